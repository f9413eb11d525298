package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/a-h/templ"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// isHX reports whether htmx sent the request and wants a fragment. A
// history restore wants the whole page.
func isHX(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}

// hxTarget is the ID of the element htmx will swap the answer into.
func hxTarget(r *http.Request) string { return r.Header.Get("HX-Target") }

// render writes c with status, buffered so that a rendering error becomes a
// clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// page answers with body inside the full layout, or with body alone (the
// contents of <main>) for an htmx request: one handler serves both.
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, title, nav string, body templ.Component) {
	if isHX(r) {
		s.render(w, r, status, body)
		return
	}
	s.render(w, r, status, views.Layout(s.pageModel(r, title, nav), body))
}

// formPage answers a form: in the dialog for an htmx GET, alone (to replace
// itself) for an htmx POST, and as a page of its own otherwise.
func (s *Server) formPage(w http.ResponseWriter, r *http.Request, status int, title, nav, back, backLabel string, form templ.Component) {
	if isHX(r) {
		if r.Method == http.MethodGet {
			s.render(w, r, status, views.ModalFrame(title, back, form))
		} else {
			s.render(w, r, status, form)
		}
		return
	}
	s.page(w, r, status, title, nav, views.FormPage(title, back, backLabel, form))
}

// pageModel gathers what the layout shows around every full page.
func (s *Server) pageModel(r *http.Request, title, nav string) views.Page {
	ctx := r.Context()
	p := views.Page{Title: title, Nav: nav, Assets: s.assets}
	v := viewerFrom(r)
	if v == nil {
		return p
	}
	p.UserName = v.UserName
	p.DomainName = v.DomainName
	p.ProjectID = v.ProjectID
	p.ProjectName = v.ProjectName
	p.IsAdmin = v.Creds.IsAdmin()
	p.HasCompute = s.comp != nil
	p.HasImages = s.imgs != nil
	p.HasNetwork = s.nets != nil
	p.CSRF = v.CSRF
	p.Flash = s.popFlash(ctx)
	if s.hub != nil {
		p.Live = liveURL + "?" + url.Values{"page": {r.URL.Path}}.Encode()
	}
	projects, err := s.id.ListUserProjects(ctx, v.UserID)
	if err != nil {
		s.log.WarnContext(ctx, "list projects for the switcher", "user_id", v.UserID, "err", err)
	}
	for _, pr := range projects {
		if !pr.Enabled {
			continue
		}
		p.Projects = append(p.Projects, views.ProjectChoice{ID: pr.ID, Name: pr.Name, Current: pr.ID == v.ProjectID})
	}
	slices.SortFunc(p.Projects, func(a, b views.ProjectChoice) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	if len(p.Projects) == 0 && v.ProjectID != "" {
		p.Projects = []views.ProjectChoice{{ID: v.ProjectID, Name: v.ProjectName, Current: true}}
	}
	return p
}

// errorPage answers err as a page (or fragment) in the user's words.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	status := fault.Status(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	ev := views.ErrorView{Status: status, Title: errorTitle(status), Message: fault.Message(err), Back: "/"}
	body := views.ErrorPanel(ev)
	if isHX(r) {
		if hxTarget(r) == "modal-body" {
			body = views.ModalFrame(ev.Title, "/", body)
		} else if r.Method != http.MethodGet {
			// An action's failure is a toast; the page stays as it is.
			setTrigger(w, toastEvent("error", fault.Message(err)))
			w.Header().Set("HX-Reswap", "none")
		}
		s.render(w, r, status, body)
		return
	}
	if viewerFrom(r) == nil {
		s.render(w, r, status, views.BarePage(ev.Title, s.assets, body))
		return
	}
	s.page(w, r, status, ev.Title, "", body)
}

func errorTitle(status int) string {
	switch status {
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusUnauthorized:
		return "Sign-in required"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "Invalid request"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return http.StatusText(status)
}

// notFound is the dashboard's 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, fault.NotFoundf("There is no page at this address."))
}

// done finishes a successful action. A plain form post gets a flash message
// and a 303 to the page to show next; an htmx post gets a toast, closes the
// dialog, and has htmx load that page's content into <main>.
func (s *Server) done(w http.ResponseWriter, r *http.Request, to, msg string) {
	s.finish(w, r, to, "success", msg)
}

// finish is done with a message level: "error" reports a partial success.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, to, level, msg string) {
	if isHX(r) {
		setTrigger(w, toastEvent(level, msg), "nimbus:modal-close")
		loc := map[string]string{"path": to, "target": "#main", "swap": "innerHTML"}
		if cur, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil {
			if t, err := url.Parse(to); err == nil && cur.Path == t.Path {
				loc["push"] = "false"
			}
		}
		b, _ := json.Marshal(loc)
		w.Header().Set("HX-Location", asciiJSON(b))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.flash(r.Context(), level, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failed finishes an action that the service refused, outside a form (for
// example an Enable button): a toast for htmx, a flash and a 303 otherwise.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, back string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if fault.Status(err) >= 500 {
		s.log.ErrorContext(r.Context(), "dashboard action failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if isHX(r) {
		setTrigger(w, toastEvent("error", fault.Message(err)))
		w.Header().Set("HX-Reswap", "none")
		w.WriteHeader(fault.Status(err))
		return
	}
	s.flash(r.Context(), "error", fault.Message(err))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// formStatus is the status of a form re-rendered with errors: 422 for what
// the user can fix, or the fault's own status.
func formStatus(err error) int {
	switch fault.KindOf(err) {
	case fault.Invalid, fault.Conflict:
		return http.StatusUnprocessableEntity
	}
	return fault.Status(err)
}

type trigger struct {
	name   string
	detail any
}

func toastEvent(level, msg string) trigger {
	return trigger{"nimbus:toast", map[string]string{"level": level, "message": msg}}
}

// setTrigger sets HX-Trigger to the given events; plain strings are events
// without detail.
func setTrigger(w http.ResponseWriter, events ...any) {
	m := map[string]any{}
	for _, e := range events {
		switch e := e.(type) {
		case trigger:
			m[e.name] = e.detail
		case string:
			m[e] = map[string]any{}
		default:
			panic(fmt.Sprintf("setTrigger: %T", e))
		}
	}
	b, _ := json.Marshal(m)
	w.Header().Set("HX-Trigger", asciiJSON(b))
}

// asciiJSON escapes every non-ASCII rune of a JSON text as \uXXXX: header
// values travel as Latin-1, so a user's "Zoë" would otherwise arrive mangled.
// json.Marshal already escapes <, > and &.
func asciiJSON(b []byte) string {
	var sb strings.Builder
	for _, r := range string(b) {
		if r < 0x80 {
			sb.WriteRune(r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
			continue
		}
		fmt.Fprintf(&sb, `\u%04x`, r)
	}
	return sb.String()
}
