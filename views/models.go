// Package views holds the dashboard's templ components: the page layout, the
// login page, the project and admin pages and the identity administration
// pages, each with the fragments that HTMX swaps in. Components take the view
// models defined here, never service rows, and templ escapes every value, so
// user text can never become markup or an hx-* attribute.
package views

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Nav keys name the entry the left navigation highlights.
const (
	NavOverview = "project/overview"
	NavSystem   = "admin/system"
	NavProjects = "identity/projects"
	NavUsers    = "identity/users"
	NavGroups   = "identity/groups"
	NavRoles    = "identity/roles"
)

// Assets are the versioned URLs of the static files every page loads.
type Assets struct {
	CSS     string
	JS      string
	HTMX    string
	HTMXWS  string // the htmx WebSocket extension
	Favicon string
}

// Flash is a one-time message shown at the top of the next full page.
type Flash struct {
	Level   string // success, error or info
	Message string
}

// ProjectChoice is one entry of the project switcher.
type ProjectChoice struct {
	ID      string
	Name    string
	Current bool
}

// Page is what the layout needs around a page's content.
type Page struct {
	Title       string
	Nav         string
	UserName    string
	DomainName  string
	ProjectID   string
	ProjectName string
	Projects    []ProjectChoice
	IsAdmin     bool
	// HasCompute, HasImages and HasNetwork show the compute, image and
	// network pages.
	HasCompute bool
	HasImages  bool
	HasNetwork bool
	CSRF       string
	Flash      *Flash
	Assets     Assets
	// Live is the live-updates WebSocket URL the page connects to; empty
	// when there is none. Pages are complete without it.
	Live string
}

// HTMXConfig keeps htmx CSP-clean (no eval, no inline scripts, no injected
// indicator styles, never writing style attributes while settling, requests
// to this origin only), keeps pages out of localStorage, and lets htmx swap
// 4xx answers, which carry inline validation errors and error panels.
const HTMXConfig = `{"selfRequestsOnly":true,"allowEval":false,"allowScriptTags":false,` +
	`"includeIndicatorStyles":false,"attributesToSettle":["class"],"historyRestoreAsHxRequest":false,"historyCacheSize":0,"refreshOnHistoryMiss":true,` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},` +
	`{"code":"4..","swap":true},{"code":"5..","swap":false,"error":true}]}`

// Option is one choice of a select element.
type Option struct {
	Value    string
	Label    string
	Selected bool
}

// Pager links a paged list's first page and the page after this one ("" =
// none).
type Pager struct {
	FirstURL, NextURL string
}

// OptionGroup is a labelled group of options.
type OptionGroup struct {
	Label   string
	Options []Option
}

// Form carries what every form shows besides its fields: where it posts,
// the form-level error (a service fault in the user's words) and the error
// of each field, by field name.
type Form struct {
	Action string
	// Cancel is where Cancel leads without JavaScript; in the dialog it closes it.
	Cancel string
	Error  string
	Errors map[string]string
}

// FieldError returns the error recorded for field, or "".
func (f Form) FieldError(field string) string { return f.Errors[field] }

// SetError records an error for field.
func (f *Form) SetError(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[field] = msg
}

// Valid reports whether no error was recorded.
func (f Form) Valid() bool { return f.Error == "" && len(f.Errors) == 0 }

// Confirm is a confirmation step before a destructive or significant action.
type Confirm struct {
	Form
	Title   string
	Lead    string // text before the subject, e.g. "Delete the project"
	Subject string // the resource's name, shown emphasised
	Detail  string // consequences, e.g. "This cannot be undone."
	Button  string
	Danger  bool
	// Hidden are extra fields the action needs.
	Hidden []Option
}

// ErrorView is an error page or panel.
type ErrorView struct {
	Status  int
	Title   string
	Message string
	Back    string
}

// csrfKey carries the session's CSRF token to CSRFField.
type csrfKey struct{}

// WithCSRF returns a context from which CSRFField renders token.
func WithCSRF(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

// CSRFToken returns the token WithCSRF stored, or "".
func CSRFToken(ctx context.Context) string {
	t, _ := ctx.Value(csrfKey{}).(string)
	return t
}

// Path joins URL path segments, escaping each one, so IDs never change a
// URL's shape: Path("/identity-admin/projects", id, "edit").
func Path(base string, segments ...string) string {
	p := base
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// FormatTime shows a time in UTC to the minute.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// EnabledLabel is the text of an enabled/disabled badge.
func EnabledLabel(enabled bool) string {
	if enabled {
		return "Enabled"
	}
	return "Disabled"
}

// EnabledClass is the CSS class of an enabled/disabled badge.
func EnabledClass(enabled bool) string {
	if enabled {
		return "badge badge-on"
	}
	return "badge badge-off"
}

// Field describes one form control.
type Field struct {
	Name         string
	Label        string
	Type         string // text (default), password, email
	Value        string
	Error        string
	Hint         string
	Required     bool
	Autocomplete string
	MaxLength    int
}

// ID is the control's element ID.
func (f Field) ID() string { return "f-" + f.Name }

// InputType is the input's type attribute.
func (f Field) InputType() string {
	if f.Type == "" {
		return "text"
	}
	return f.Type
}

// Describedby lists the IDs of the hint and error elements, if any.
func (f Field) Describedby() string {
	s := ""
	if f.Hint != "" {
		s = f.ID() + "-hint"
	}
	if f.Error != "" {
		if s != "" {
			s += " "
		}
		s += f.ID() + "-error"
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func urlQuery(s string) string { return url.QueryEscape(s) }
