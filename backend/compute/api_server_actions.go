package compute

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// serverAction is POST /servers/{id}/action: the body's one key names the
// action.
func (a *apiHandler) serverAction(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if len(body) != 1 {
		a.fail(w, r, fault.Invalidf("Invalid input: the body must hold exactly one action."))
		return
	}
	var name string
	var raw json.RawMessage
	for name, raw = range body {
	}
	ctx := r.Context()
	arg := func(v any) error {
		if len(raw) == 0 || string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fault.Invalidf("Invalid input for field/attribute %s.", name)
		}
		return nil
	}
	accepted := func(err error) {
		if err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
	switch name {
	case "os-start":
		accepted(a.s.StartServer(ctx, id))
	case "os-stop":
		accepted(a.s.StopServer(ctx, id))
	case "reboot":
		var b struct {
			Type string `json:"type"`
		}
		if err := arg(&b); err != nil {
			a.fail(w, r, err)
			return
		}
		if b.Type == "" {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute reboot. Value: {}. 'type' is a required property"))
			return
		}
		accepted(a.s.RebootServer(ctx, id, strings.ToUpper(b.Type)))
	case "pause":
		accepted(a.s.PauseServer(ctx, id))
	case "unpause":
		accepted(a.s.UnpauseServer(ctx, id))
	case "suspend":
		accepted(a.s.SuspendServer(ctx, id))
	case "resume":
		accepted(a.s.ResumeServer(ctx, id))
	case "lock":
		var b struct {
			Reason *string `json:"locked_reason"`
		}
		if err := arg(&b); err != nil {
			a.fail(w, r, err)
			return
		}
		if !version(r).atLeast(73) {
			b.Reason = nil
		}
		accepted(a.s.LockServer(ctx, id, b.Reason))
	case "unlock":
		accepted(a.s.UnlockServer(ctx, id))
	case "confirmResize":
		if err := a.s.ConfirmResize(ctx, id); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "revertResize":
		accepted(a.s.RevertResize(ctx, id))
	case "resize":
		var b struct {
			FlavorRef json.RawMessage `json:"flavorRef"`
		}
		if err := arg(&b); err != nil {
			a.fail(w, r, err)
			return
		}
		ref, err := specValue(b.FlavorRef)
		if err != nil || ref == "" {
			a.fail(w, r, fault.Invalidf("Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property"))
			return
		}
		accepted(a.s.ResizeServer(ctx, id, ref))
	case "rebuild":
		a.rebuild(w, r, id, arg)
	case "createImage":
		a.createImage(w, r, id, arg)
	case "os-getConsoleOutput":
		var b struct {
			Length json.RawMessage `json:"length"`
		}
		if err := arg(&b); err != nil {
			a.fail(w, r, err)
			return
		}
		n := 0
		if len(b.Length) > 0 && string(b.Length) != "null" {
			var l flexInt
			if err := json.Unmarshal(b.Length, &l); err != nil || l.v < -1 {
				a.fail(w, r, fault.Invalidf("Invalid input for field/attribute length."))
				return
			}
			n = l.v
		}
		out, err := a.s.ConsoleOutput(ctx, id, n)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rest.JSON(w, http.StatusOK, map[string]any{"output": out})
	case "os-getVNCConsole":
		var b struct {
			Type string `json:"type"`
		}
		if err := arg(&b); err != nil {
			a.fail(w, r, err)
			return
		}
		c, err := a.s.CreateConsole(ctx, id, "vnc", b.Type)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rest.JSON(w, http.StatusOK, map[string]any{"console": map[string]any{"type": c.Type, "url": c.URL}})
	case "addFloatingIp", "removeFloatingIp":
		a.floatingIPAction(w, r, id, name, raw)
	default:
		a.fail(w, r, fault.NotFoundf("There is no such action: %s", name))
	}
}

func (a *apiHandler) rebuild(w http.ResponseWriter, r *http.Request, id string, arg func(any) error) {
	var b struct {
		ImageRef  string            `json:"imageRef"`
		Name      *string           `json:"name"`
		Metadata  map[string]string `json:"metadata"`
		AdminPass string            `json:"adminPass"`
	}
	if err := arg(&b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.ImageRef == "" {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute rebuild. Value: {}. 'imageRef' is a required property"))
		return
	}
	srv, pass, err := a.s.RebuildServer(r.Context(), id, ServerRebuild{ImageRef: b.ImageRef, Name: b.Name,
		Metadata: b.Metadata, AdminPass: b.AdminPass})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.serverView(r, srv, a.hostStatuses(r), true)
	m["adminPass"] = pass
	rest.JSON(w, http.StatusAccepted, map[string]any{"server": m})
}

func (a *apiHandler) createImage(w http.ResponseWriter, r *http.Request, id string, arg func(any) error) {
	var b struct {
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := arg(&b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Name == nil {
		a.fail(w, r, fault.Invalidf("Invalid input for field/attribute createImage. Value: {}. 'name' is a required property"))
		return
	}
	imageID, err := a.s.CreateImage(r.Context(), id, *b.Name, b.Metadata)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if version(r).atLeast(45) {
		rest.JSON(w, http.StatusAccepted, map[string]any{"image_id": imageID})
		return
	}
	w.Header().Set("Location", a.baseURL(r)+"/images/"+imageID)
	w.WriteHeader(http.StatusAccepted)
}

func (a *apiHandler) remoteConsole(w http.ResponseWriter, r *http.Request) {
	if !version(r).atLeast(6) {
		a.notFound(w, r)
		return
	}
	var body struct {
		RC *struct {
			Protocol string `json:"protocol"`
			Type     string `json:"type"`
		} `json:"remote_console"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.RC != nil, "remote_console"); err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.s.CreateConsole(r.Context(), chi.URLParam(r, "id"), body.RC.Protocol, body.RC.Type)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"remote_console": map[string]any{
		"protocol": c.Protocol, "type": c.Type, "url": c.URL}})
}

func (a *apiHandler) listMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := a.s.ServerMetadata(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"metadata": md})
}

func (a *apiHandler) updateMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := decodeBody(r, &body); err != nil {
			a.fail(w, r, err)
			return
		}
		if err := requireKey(body.Metadata != nil, "metadata"); err != nil {
			a.fail(w, r, err)
			return
		}
		md, err := a.s.UpdateServerMetadata(r.Context(), chi.URLParam(r, "id"), body.Metadata, replace)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rest.JSON(w, http.StatusOK, map[string]any{"metadata": md})
	}
}

func (a *apiHandler) showMetadataItem(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "key")
	v, err := a.s.ServerMetadataItem(r.Context(), chi.URLParam(r, "id"), key)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (a *apiHandler) setMetadataItem(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "key")
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	v, ok := body.Meta[key]
	if !ok || len(body.Meta) != 1 {
		a.fail(w, r, fault.Invalidf("Request body and URI mismatch"))
		return
	}
	if err := a.s.SetServerMetadataItem(r.Context(), chi.URLParam(r, "id"), key, v); err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (a *apiHandler) deleteMetadataItem(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteServerMetadataItem(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "key")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func actionView(r *http.Request, act *InstanceAction) map[string]any {
	m := map[string]any{"action": act.Action, "instance_uuid": act.InstanceUUID, "message": nullablePtr(act.Message),
		"project_id": act.ProjectID, "request_id": act.RequestID, "start_time": apiTimeMicro(act.StartTime),
		"user_id": act.UserID}
	if version(r).atLeast(58) {
		m["updated_at"] = apiTimeMicro(act.UpdatedAt)
	}
	return m
}

func (a *apiHandler) listActions(w http.ResponseWriter, r *http.Request) {
	acts, err := a.s.ListInstanceActions(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(acts))
	for i := range acts {
		out = append(out, actionView(r, &acts[i]))
	}
	rest.JSON(w, http.StatusOK, map[string]any{"instanceActions": out})
}

func (a *apiHandler) showAction(w http.ResponseWriter, r *http.Request) {
	act, details, err := a.s.GetInstanceAction(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "req"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := version(r)
	m := actionView(r, act)
	if v.atLeast(51) || a.s.allowed(r.Context(), policyEvents, map[string]string{"project_id": act.ProjectID}) {
		evs := make([]any, 0, len(act.Events))
		for _, e := range act.Events {
			ev := map[string]any{"event": e.Event, "start_time": apiTimeMicro(e.StartTime),
				"finish_time": apiTimePtr(e.FinishTime), "result": nullable(e.Result)}
			if details {
				ev["traceback"] = nullable(e.Traceback)
			}
			if v.atLeast(62) {
				if details {
					ev["host"] = nullable(e.Host)
				}
				digest := ""
				if e.Host != "" {
					digest = (&Server{ProjectID: act.ProjectID, Node: e.Host}).HostDigest()
				}
				ev["hostId"] = digest
			}
			evs = append(evs, ev)
		}
		m["events"] = evs
	}
	rest.JSON(w, http.StatusOK, map[string]any{"instanceAction": m})
}
