package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// computeRoutes declares the project's compute pages; absent without a
// compute service.
func (s *Server) computeRoutes(d chi.Router) {
	if s.comp == nil {
		return
	}
	d.Get(views.InstancesURL, s.instanceList(false))
	d.Get(views.InstancesURL+"/new", s.launchForm)
	d.Post(views.InstancesURL, s.launch)
	d.Post(views.InstancesURL+"/new/keypair", s.launchCreateKey)
	d.Post(views.InstancesURL+"/bulk", s.instanceBulk)
	d.Get(views.InstancesURL+"/{id}", s.instanceDetail)
	d.Get(views.InstancesURL+"/{id}/log", s.instanceLog)
	d.Get(views.InstancesURL+"/{id}/row", s.instanceRowFragment)
	d.Get(views.InstancesURL+"/{id}/snapshot", s.snapshotForm)
	d.Post(views.InstancesURL+"/{id}/snapshot", s.snapshot)
	d.Get(views.InstancesURL+"/{id}/resize", s.resizeDialog)
	d.Post(views.InstancesURL+"/{id}/resize", s.resize)
	d.Get(views.InstancesURL+"/{id}/rebuild", s.rebuildDialog)
	d.Post(views.InstancesURL+"/{id}/rebuild", s.rebuild)
	if s.nets != nil {
		d.Get(views.InstancesURL+"/{id}/floating-ip", s.floatingIPForm)
		d.Post(views.InstancesURL+"/{id}/floating-ip", s.floatingIPAssociate)
		d.Post(views.InstancesURL+"/{id}/floating-ip/disassociate", s.floatingIPDisassociate)
	}
	d.Get(views.InstancesURL+"/{id}/{action}", s.instanceActionConfirm)
	d.Post(views.InstancesURL+"/{id}/{action}", s.instanceAction)

	d.Get(views.KeyPairsURL, s.keypairList)
	d.Get(views.KeyPairsURL+"/new", s.keypairNew)
	d.Post(views.KeyPairsURL, s.keypairCreate)
	d.Get(views.KeyPairsURL+"/import", s.keypairImportForm)
	d.Post(views.KeyPairsURL+"/import", s.keypairImport)
	d.Get(views.KeyPairsURL+"/{name}/delete", s.keypairDeleteConfirm)
	d.Post(views.KeyPairsURL+"/{name}/delete", s.keypairDelete)
}

const (
	defaultPageSize = 20
	maxPageSize     = 200
)

// instanceSorts maps the list's sort parameter to the service's sort keys.
var instanceSorts = map[string]string{
	"name": "display_name", "status": "vm_state", "task": "task_state", "power": "power_state",
	"created": "created_at", "host": "host", "flavor": "flavor", "image": "image_ref",
}

// instanceList is GET /project/instances and (admin) GET /admin/instances:
// filtered by name, sorted by a column, paged by marker.
func (s *Server) instanceList(admin bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		q := r.URL.Query()
		base := views.InstancesURL
		nav, title := views.NavInstances, "Instances"
		if admin {
			base, nav, title = views.AllInstancesURL, views.NavAllInstances, "All instances"
		}
		l := views.InstanceList{URL: base, Admin: admin, Query: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"), Dir: q.Get("dir")}
		if _, ok := instanceSorts[l.Sort]; !ok {
			l.Sort = "created"
		}
		if l.Dir != "asc" {
			l.Dir = "desc"
		}
		if l.Sort != "created" && q.Get("dir") == "" {
			l.Dir = "asc"
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = defaultPageSize
		}
		limit = min(limit, maxPageSize)
		marker := q.Get("marker")
		f := compute.ServerFilter{
			AllTenants: admin, Limit: limit + 1, Marker: marker,
			SortKeys: []string{instanceSorts[l.Sort]}, SortDirs: []string{l.Dir},
		}
		if l.Query != "" {
			f.Name = regexp.QuoteMeta(l.Query)
		}
		servers, err := s.comp.ListServers(ctx, f)
		if err != nil && marker != "" && fault.KindOf(err) == fault.Invalid {
			// The marker's server is gone: start again from the first page.
			f.Marker, marker = "", ""
			servers, err = s.comp.ListServers(ctx, f)
		}
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		listURL := func(sort, dir, marker string) string {
			v := url.Values{}
			if l.Query != "" {
				v.Set("q", l.Query)
			}
			v.Set("sort", sort)
			v.Set("dir", dir)
			if marker != "" {
				v.Set("marker", marker)
			}
			if limit != defaultPageSize {
				v.Set("limit", strconv.Itoa(limit))
			}
			return base + "?" + v.Encode()
		}
		if len(servers) > limit {
			servers = servers[:limit]
			l.NextURL = listURL(l.Sort, l.Dir, servers[len(servers)-1].ID)
		}
		if marker != "" {
			l.FirstURL = listURL(l.Sort, l.Dir, "")
		}
		cols := []struct{ key, label string }{{"name", "Name"}}
		if admin {
			cols = append(cols, struct{ key, label string }{"", "Project"}, struct{ key, label string }{"host", "Host"})
		}
		cols = append(cols, []struct{ key, label string }{{"image", "Image"}, {"", "Addresses"}, {"flavor", "Flavor"}}...)
		if !admin {
			cols = append(cols, struct{ key, label string }{"", "Key pair"})
		}
		cols = append(cols, []struct{ key, label string }{{"status", "Status"}, {"power", "Power state"}, {"task", "Task"}, {"created", "Age"}}...)
		for _, c := range cols {
			sl := views.SortLink{Key: c.key, Label: c.label}
			if c.key != "" {
				sl.Active = c.key == l.Sort
				sl.Desc = sl.Active && l.Dir == "desc"
				dir := "asc"
				if sl.Active && l.Dir == "asc" {
					dir = "desc"
				}
				sl.URL = listURL(c.key, dir, "")
			}
			l.Columns = append(l.Columns, sl)
		}
		var projects map[string]string
		if admin && len(servers) > 0 {
			projects = s.projectNames(ctx)
		}
		names := s.imageNamer(ctx)
		for i := range servers {
			row := s.instanceRow(r, &servers[i], names, base)
			if admin {
				row.Project = nameOr(projects, servers[i].ProjectID)
			}
			l.Rows = append(l.Rows, row)
		}
		v := viewerFrom(r)
		l.CanLaunch = canWrite(v) && !admin
		l.CanBulk = canWrite(v)
		s.page(w, r, http.StatusOK, title, nav, views.InstancesPage(l))
	}
}

// projectNames maps project IDs to names for the admin lists.
func (s *Server) projectNames(ctx context.Context) map[string]string {
	m := map[string]string{}
	ps, _, err := s.id.ListProjects(ctx, identity.ProjectFilter{})
	if err != nil {
		s.log.WarnContext(ctx, "list projects", "err", err)
		return m
	}
	for _, p := range ps {
		m[p.ID] = p.Name
	}
	return m
}

// instanceAction is POST /project/instances/{id}/{action}. From a row it
// answers with the row as it now is; from a dialog or the detail page it
// finishes as every action does; a refusal is the service's message.
func (s *Server) instanceAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, action := urlID(r), chi.URLParam(r, "action")
	back := safeBack(r.PostFormValue("back"))
	var err error
	switch action {
	case "start":
		err = s.comp.StartServer(ctx, id)
	case "stop":
		err = s.comp.StopServer(ctx, id)
	case "reboot":
		typ := "SOFT"
		if r.PostFormValue("type") == "HARD" {
			typ = "HARD"
		}
		err = s.comp.RebootServer(ctx, id, typ)
	case "pause":
		err = s.comp.PauseServer(ctx, id)
	case "unpause":
		err = s.comp.UnpauseServer(ctx, id)
	case "suspend":
		err = s.comp.SuspendServer(ctx, id)
	case "resume":
		err = s.comp.ResumeServer(ctx, id)
	case "lock":
		err = s.comp.LockServer(ctx, id, nil)
	case "unlock":
		err = s.comp.UnlockServer(ctx, id)
	case "confirm-resize":
		err = s.comp.ConfirmResize(ctx, id)
	case "revert-resize":
		err = s.comp.RevertResize(ctx, id)
	case "delete":
		err = s.comp.DeleteServer(ctx, id)
		if back == views.Path(views.InstancesURL, id) || strings.HasPrefix(back, views.Path(views.InstancesURL, id)+"?") {
			back = views.InstancesURL
		}
	default:
		s.notFound(w, r)
		return
	}
	if err != nil {
		s.actionFailed(w, r, id, action, back, err)
		return
	}
	msg := actionDoneMessage(action)
	if isHX(r) && hxTarget(r) == "instance-"+id {
		srv, gerr := s.comp.GetServer(ctx, id)
		if gerr != nil {
			// Gone already: an empty answer removes the row.
			setTrigger(w, toastEvent("success", msg))
			w.WriteHeader(http.StatusOK)
			return
		}
		setTrigger(w, toastEvent("success", msg))
		row := s.instanceRow(r, srv, s.imageNamer(ctx), back)
		if row.Admin {
			row.Project = nameOr(s.projectNames(ctx), srv.ProjectID)
		}
		s.render(w, r, http.StatusOK, views.InstanceRowView(row, canWrite(viewerFrom(r))))
		return
	}
	s.done(w, r, back, msg)
}

// instanceRowFragment is GET /project/instances/{id}/row: the row as it is
// now, which a row in transition polls until it settles. A server gone (or
// never visible) answers an empty row, which removes it.
func (s *Server) instanceRowFragment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := urlID(r)
	back := safeBack(r.URL.Query().Get("back"))
	if !isHX(r) {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	srv, err := s.comp.GetServer(ctx, id)
	if fault.Is(err, fault.NotFound) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		// A passing failure: keep the row, and try again at the next poll.
		w.Header().Set("HX-Reswap", "none")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	row := s.instanceRow(r, srv, s.imageNamer(ctx), back)
	if row.Admin {
		if !viewerFrom(r).Creds.IsAdmin() {
			row = s.instanceRow(r, srv, s.imageNamer(ctx), views.InstancesURL)
		} else {
			row.Project = nameOr(s.projectNames(ctx), srv.ProjectID)
		}
	}
	s.render(w, r, http.StatusOK, views.InstanceRowView(row, canWrite(viewerFrom(r))))
}

// actionFailed reports a refused action: in the confirmation dialog when it
// came from one, as a toast for a row, and as an error page otherwise.
func (s *Server) actionFailed(w http.ResponseWriter, r *http.Request, id, action, back string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if isHX(r) && views.ConfirmedAction(action) && hxTarget(r) != "instance-"+id {
		c := s.instanceConfirmation(r, id, action, back)
		s.confirmFailed(w, r, views.NavInstances, "Instances", c, err)
		return
	}
	if isHX(r) {
		s.failed(w, r, back, err)
		return
	}
	s.errorPage(w, r, err)
}

func actionDoneMessage(action string) string {
	switch action {
	case "start":
		return "Starting the instance."
	case "stop":
		return "Stopping the instance."
	case "reboot":
		return "Rebooting the instance."
	case "pause":
		return "Pausing the instance."
	case "unpause":
		return "Unpausing the instance."
	case "suspend":
		return "Suspending the instance."
	case "resume":
		return "Resuming the instance."
	case "lock":
		return "Instance locked."
	case "unlock":
		return "Instance unlocked."
	case "confirm-resize":
		return "Confirming the resize."
	case "revert-resize":
		return "Reverting the resize."
	case "delete":
		return "Deleting the instance."
	}
	return "Done."
}

// instanceConfirmation is the question before a stop, reboot or delete.
func (s *Server) instanceConfirmation(r *http.Request, id, action, back string) views.Confirm {
	name := id
	if srv, err := s.comp.GetServer(r.Context(), id); err == nil && srv.Name != "" {
		name = srv.Name
	}
	c := views.Confirm{
		Form:    views.Form{Action: views.Path(views.InstancesURL, id, action), Cancel: back},
		Subject: name,
		Hidden:  []views.Option{{Value: "back", Label: back}},
	}
	switch action {
	case "delete":
		c.Title, c.Lead, c.Button, c.Danger = "Delete instance", "Delete the instance", "Delete instance", true
		c.Detail = "Its disks are destroyed with it. This cannot be undone."
	case "stop":
		c.Title, c.Lead, c.Button, c.Danger = "Stop instance", "Shut down the instance", "Stop instance", true
		c.Detail = "The guest is powered off; you can start it again later."
	case "reboot":
		c.Title, c.Lead, c.Button = "Reboot instance", "Reboot the instance", "Reboot"
		c.Detail = "The guest is asked to restart; unsaved work in it may be lost."
	}
	return c
}

// instanceActionConfirm is GET /project/instances/{id}/{delete,stop,reboot}.
func (s *Server) instanceActionConfirm(w http.ResponseWriter, r *http.Request) {
	id, action := urlID(r), chi.URLParam(r, "action")
	if !views.ConfirmedAction(action) {
		s.notFound(w, r)
		return
	}
	if _, err := s.comp.GetServer(r.Context(), id); err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := safeBack(r.URL.Query().Get("back"))
	s.confirm(w, r, http.StatusOK, views.NavInstances, "Instances", s.instanceConfirmation(r, id, action, back))
}

// instanceBulk is POST /project/instances/bulk (and /admin/instances/bulk):
// start, stop or delete the selected instances. Stop and delete ask first.
func (s *Server) instanceBulk(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_ = r.ParseForm()
	back := views.InstancesURL
	if strings.HasPrefix(r.URL.Path, views.AllInstancesURL) {
		back = views.AllInstancesURL
	}
	action := r.PostFormValue("action")
	ids := r.PostForm["id"]
	if action != "start" && action != "stop" && action != "delete" {
		s.failed(w, r, back, fault.Invalidf("Choose start, stop or delete."))
		return
	}
	if len(ids) == 0 {
		s.bulkFailed(w, r, back, fault.Invalidf("Select at least one instance first."))
		return
	}
	if len(ids) > maxPageSize {
		s.bulkFailed(w, r, back, fault.Invalidf("Select at most %d instances at a time.", maxPageSize))
		return
	}
	if action != "start" && r.PostFormValue("confirmed") != "true" {
		names := make([]string, 0, len(ids))
		hidden := []views.Option{{Value: "action", Label: action}, {Value: "confirmed", Label: "true"}}
		for _, id := range ids {
			hidden = append(hidden, views.Option{Value: "id", Label: id})
			if srv, err := s.comp.GetServer(ctx, id); err == nil {
				names = append(names, srv.Name)
			} else {
				names = append(names, id)
			}
		}
		c := views.Confirm{
			Form:    views.Form{Action: r.URL.Path, Cancel: back},
			Subject: strings.Join(names, ", "),
			Hidden:  hidden,
		}
		if action == "delete" {
			c.Title, c.Lead, c.Button, c.Danger = "Delete instances", "Delete "+instancesWord(len(ids)), "Delete instances", true
			c.Detail = "Their disks are destroyed with them. This cannot be undone."
		} else {
			c.Title, c.Lead, c.Button, c.Danger = "Stop instances", "Shut down "+instancesWord(len(ids)), "Stop instances", true
		}
		if isHX(r) && hxTarget(r) == "modal-body" {
			s.render(w, r, http.StatusOK, views.ModalFrame(c.Title, back, views.ConfirmForm(c)))
			return
		}
		s.confirm(w, r, http.StatusOK, views.NavInstances, "Instances", c)
		return
	}
	var failed []string
	for _, id := range ids {
		var err error
		switch action {
		case "start":
			err = s.comp.StartServer(ctx, id)
		case "stop":
			err = s.comp.StopServer(ctx, id)
		case "delete":
			err = s.comp.DeleteServer(ctx, id)
		}
		if err != nil {
			failed = append(failed, fault.Message(err))
		}
	}
	verb := map[string]string{"start": "Starting", "stop": "Stopping", "delete": "Deleting"}[action]
	ok := len(ids) - len(failed)
	if len(failed) > 0 {
		msg := verb + " " + strconv.Itoa(ok) + " of " + instancesWord(len(ids)) + ". " + failed[0]
		if ok == 0 && !isHX(r) {
			s.errorPage(w, r, fault.Forbiddenf("%s", failed[0]))
			return
		}
		s.finish(w, r, back, "error", msg)
		return
	}
	s.done(w, r, back, verb+" "+instancesWord(ok)+".")
}

// instancesWord is "1 instance" or "n instances".
func instancesWord(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}

func (s *Server) bulkFailed(w http.ResponseWriter, r *http.Request, back string, err error) {
	if isHX(r) {
		setTrigger(w, toastEvent("error", fault.Message(err)))
		w.Header().Set("HX-Reswap", "none")
		w.WriteHeader(fault.Status(err))
		return
	}
	s.failed(w, r, back, err)
}

// instanceDetail is GET /project/instances/{id}?tab=overview|log|console|actions.
func (s *Server) instanceDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := urlID(r)
	srv, err := s.comp.GetServer(ctx, id)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	v := viewerFrom(r)
	tab := r.URL.Query().Get("tab")
	switch tab {
	case "log", "console", "actions":
	default:
		tab = "overview"
	}
	self := views.Path(views.InstancesURL, id)
	row := s.instanceRow(r, srv, s.imageNamer(ctx), self)
	row.Detail = true
	d := views.InstanceDetail{
		Row: row, ProjectID: srv.ProjectID, UserID: srv.UserID, ImageID: srv.ImageRef, FlavorID: srv.Flavor.ID,
		FlavorText: srv.Flavor.Name + " (" + strconv.FormatInt(srv.Flavor.VCPUs, 10) + " vCPU, " +
			strconv.FormatInt(srv.Flavor.MemoryMB, 10) + " MiB RAM, " + strconv.FormatInt(srv.Flavor.RootGB, 10) + " GiB disk)",
		Zone: srv.AvailabilityZone, Created: srv.CreatedAt, Tab: tab, IsAdmin: v.Creds.IsAdmin(),
		Launched: "—",
	}
	if d.IsAdmin {
		d.Host = srv.Node
	}
	if srv.LaunchedAt != nil {
		d.Launched = views.FormatTime(*srv.LaunchedAt)
	}
	if srv.LockedReason != nil {
		d.LockReason = "(" + *srv.LockedReason + ")"
	}
	if srv.Fault != nil && srv.Status() == "ERROR" {
		d.Fault = srv.Fault.Message
	}
	if s.nets != nil && tab == "overview" {
		d.HasNetwork = true
		d.Interfaces = s.instanceInterfaces(r, srv)
	}
	var body = views.InstanceOverview(d)
	switch tab {
	case "log":
		body = views.ConsoleLogView(s.consoleLog(ctx, id))
	case "console":
		cv := views.ConsoleView{ID: id}
		if srv.Status() != "ACTIVE" {
			cv.Error = "The console is available while the instance is active; it is " + srv.Status() + "."
		} else if c, err := s.comp.CreateConsole(ctx, id, "vnc", "novnc"); err != nil {
			cv.Error = fault.Message(err)
		} else {
			cv.URL = c.URL
		}
		body = views.ConsoleFrame(cv)
	case "actions":
		body = views.ActionLogView(s.actionLog(ctx, id))
	}
	s.page(w, r, http.StatusOK, srv.Name, views.NavInstances, views.InstanceDetailPage(d, body))
}

func (s *Server) consoleLog(ctx context.Context, id string) views.ConsoleLog {
	c := views.ConsoleLog{ID: id, Poll: true}
	out, err := s.comp.ConsoleOutput(ctx, id, 100)
	if err != nil {
		c.Error = "The console log is not available: " + fault.Message(err)
		return c
	}
	c.Text = out
	return c
}

func (s *Server) actionLog(ctx context.Context, id string) views.ActionLog {
	l := views.ActionLog{ID: id}
	acts, err := s.comp.ListInstanceActions(ctx, id)
	if err != nil {
		l.Error = fault.Message(err)
		return l
	}
	for i, a := range acts {
		row := views.ActionLogRow{Action: a.Action, RequestID: a.RequestID, User: a.UserID, Start: a.StartTime}
		if a.Message != nil {
			row.Message = *a.Message
		}
		// Events come with the single action; fetch them for the newest few.
		if i < 20 {
			if full, _, err := s.comp.GetInstanceAction(ctx, id, a.RequestID); err == nil {
				for _, ev := range full.Events {
					er := views.ActionEventRow{Event: ev.Event, Start: ev.StartTime, Result: ev.Result}
					if er.Result == "" {
						er.Result = "Running"
					}
					if ev.FinishTime != nil {
						er.Finish = views.FormatTime(*ev.FinishTime)
					}
					row.Events = append(row.Events, er)
				}
			}
		}
		l.Rows = append(l.Rows, row)
	}
	return l
}

// instanceLog is GET /project/instances/{id}/log: the console log panel,
// which polls it every 3 s while the tab is open.
func (s *Server) instanceLog(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	if !isHX(r) {
		http.Redirect(w, r, views.Path(views.InstancesURL, id)+"?tab=log", http.StatusSeeOther)
		return
	}
	if _, err := s.comp.GetServer(r.Context(), id); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.ConsoleLogView(s.consoleLog(r.Context(), id)))
}

// snapshotForm is GET /project/instances/{id}/snapshot.
func (s *Server) snapshotForm(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	srv, err := s.comp.GetServer(r.Context(), id)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := safeBack(r.URL.Query().Get("back"))
	f := views.SnapshotForm{Form: views.Form{Cancel: back}, Name: srv.Name + "-snapshot"}
	s.formPage(w, r, http.StatusOK, "Create snapshot", views.NavInstances, back, "Instances", views.SnapshotFormView(id, f))
}

// snapshot is POST /project/instances/{id}/snapshot.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	f := views.SnapshotForm{Form: views.Form{Cancel: views.InstancesURL}, Name: field(r, "name")}
	requireName(&f.Form, f.Name, "snapshot")
	status := http.StatusUnprocessableEntity
	if f.Valid() {
		if _, err := s.comp.CreateImage(r.Context(), id, f.Name, nil); err != nil {
			s.formFault(r, &f.Form, err, "name")
			status = formStatus(err)
		} else {
			to := views.InstancesURL
			if s.imgs != nil {
				to = views.ImagesURL
			}
			s.done(w, r, to, "Snapshot "+quoted(f.Name)+" is being created.")
			return
		}
	}
	s.formPage(w, r, status, "Create snapshot", views.NavInstances, views.InstancesURL, "Instances", views.SnapshotFormView(id, f))
}
