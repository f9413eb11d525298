package agent

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Body limits. A spawn or rebuild carries the config drive's files, so it
// may be large; nothing else is.
const (
	maxSpecBody  = 32 << 20
	maxSmallBody = 64 << 10
)

// maxConsoleLines bounds a console-log request.
const maxConsoleLines = 100000

// routes is the agent API, every route signature-checked.
func (a *agent) routes() http.Handler {
	m := http.NewServeMux()
	inst := agentapi.PathInstances + "/{uuid}"
	m.Handle("GET "+agentapi.PathInstances, a.signed(maxSmallBody, a.handleList))
	m.Handle("PUT "+inst, a.signed(maxSpecBody, a.handleSpawn))
	m.Handle("GET "+inst, a.signed(maxSmallBody, a.handleState))
	m.Handle("DELETE "+inst, a.signed(maxSmallBody, a.handleDestroy))
	m.Handle("POST "+inst+agentapi.SubActions, a.signed(maxSpecBody, a.handleAction))
	m.Handle("GET "+inst+agentapi.SubConsoleLog, a.signed(maxSmallBody, a.handleConsoleLog))
	m.Handle("GET "+inst+agentapi.SubVNC, a.signed(maxSmallBody, a.handleVNC))
	m.Handle("GET "+agentapi.PathHealth, a.signed(maxSmallBody, a.handleHealth))
	a.networkRoutes(m)
	m.Handle("/", a.signed(maxSmallBody, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, fault.NotFoundf("No such agent API path."))
	}))
	return m
}

// signed verifies the controller's signature (made with this agent's own
// secret) before h runs, and checks the instance UUID in the path.
func (a *agent) signed(maxBody int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred := a.ctl.credential()
		_, err := a.verify.Verify(r, maxBody, func(id string) ([]byte, bool) {
			if cred == nil || id != cred.AgentID {
				return nil, false
			}
			return cred.key, true
		})
		if err != nil {
			writeError(w, fault.Unauthorizedf("The request signature is missing, stale, replayed or wrong."))
			return
		}
		if u := r.PathValue("uuid"); u != "" && !validUUID(u) {
			writeError(w, fault.Invalidf("%q is not an instance UUID.", u))
			return
		}
		h(w, r)
	})
}

func writeError(w http.ResponseWriter, err error) {
	rest.JSON(w, fault.Status(err), agentapi.Error{Kind: fault.KindOf(err).String(), Message: fault.Message(err)})
}

// fail writes err, logging what the caller will not see.
func (a *agent) fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.KindOf(err) == fault.Internal {
		a.log.Error("agent request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", r.Header.Get(agentapi.HeaderRequestID), "err", err)
	}
	writeError(w, err)
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// Operation and image IDs reach file names and URL paths.
	idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// Linux interface names: at most 15 bytes, no slash or space.
	ifnameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
	macRE    = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
)

func validUUID(s string) bool { return uuidRE.MatchString(s) }

// ValidID reports whether s may serve as an operation or image ID: it ends
// up in file names and URL paths.
func ValidID(s string) bool { return idRE.MatchString(s) && !strings.Contains(s, "..") }

// ValidateSpec checks an instance spec before any work starts. Everything
// that reaches a file name, an interface name or the domain definition is
// checked here; user text (the name) is only ever escaped, never rejected.
func ValidateSpec(s agentapi.InstanceSpec) error {
	switch {
	case !validUUID(s.UUID):
		return fault.Invalidf("%q is not an instance UUID.", s.UUID)
	case s.VCPUs < 1 || s.VCPUs > 1024:
		return fault.Invalidf("An instance needs 1 to 1024 vCPUs.")
	case s.MemoryMB < 16 || s.MemoryMB > 64<<20:
		return fault.Invalidf("An instance needs 16 MiB to 64 TiB of memory.")
	case s.RootGB < 0 || s.EphemeralGB < 0 || s.SwapMB < 0:
		return fault.Invalidf("Disk sizes cannot be negative.")
	case !ValidID(s.Image.ID):
		return fault.Invalidf("%q is not an image ID.", s.Image.ID)
	case s.Image.DiskFormat != "qcow2" && s.Image.DiskFormat != "raw":
		return fault.Invalidf("Image disk format %q cannot back an instance disk; use qcow2 or raw.", s.Image.DiskFormat)
	case len(s.Name) > 255:
		return fault.Invalidf("The instance name is longer than 255 characters.")
	}
	for _, n := range s.NICs {
		if err := validateNIC(n); err != nil {
			return err
		}
	}
	if s.ConfigDrive != nil {
		for p := range s.ConfigDrive.Files {
			if !validDrivePath(p) {
				return fault.Invalidf("Config drive path %q is not a clean relative path.", p)
			}
		}
	}
	return nil
}

// validateNIC checks the fields of a NIC that reach device names and the
// domain definition.
func validateNIC(n agentapi.NIC) error {
	if !ifnameRE.MatchString(n.Bridge) || !ifnameRE.MatchString(n.TapName) {
		return fault.Invalidf("NIC %s names an invalid bridge or tap device.", n.PortID)
	}
	if !macRE.MatchString(n.MAC) {
		return fault.Invalidf("NIC %s has an invalid MAC address.", n.PortID)
	}
	if n.MTU < 0 || n.MTU > 65535 {
		return fault.Invalidf("NIC %s has an invalid MTU.", n.PortID)
	}
	return nil
}

// validDrivePath accepts clean relative paths of printable characters.
func validDrivePath(p string) bool {
	if p == "" || len(p) > 255 || strings.HasPrefix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func (a *agent) handleList(w http.ResponseWriter, r *http.Request) {
	list, err := a.driver.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []agentapi.InstanceState{}
	}
	rest.JSON(w, http.StatusOK, list)
}

// operationID returns the request's operation ID, which long work requires.
func operationID(r *http.Request) (string, error) {
	id := r.Header.Get(agentapi.HeaderOperationID)
	if !ValidID(id) {
		return "", fault.Invalidf("Long work needs an operation ID (%s) of letters, digits, dots, dashes and underscores.",
			agentapi.HeaderOperationID)
	}
	return id, nil
}

func (a *agent) handleSpawn(w http.ResponseWriter, r *http.Request) {
	opID, err := operationID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var spec agentapi.InstanceSpec
	if err := rest.Decode(r, &spec, false); err != nil {
		a.fail(w, r, err)
		return
	}
	uuid := r.PathValue("uuid")
	if spec.UUID == "" {
		spec.UUID = uuid
	}
	if spec.UUID != uuid {
		a.fail(w, r, fault.Invalidf("The spec names another instance than the path."))
		return
	}
	if err := ValidateSpec(spec); err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.submit(opID, uuid, "spawn", r.Header.Get(agentapi.HeaderRequestID), func(ctx context.Context) (map[string]string, error) {
		// A spawn of an instance that exists is a success that changes
		// nothing: the controller may retry with a new operation ID.
		if _, err := a.driver.State(ctx, uuid); err == nil {
			return nil, nil
		} else if !fault.Is(err, fault.NotFound) {
			return nil, err
		}
		return nil, a.driver.Spawn(ctx, spec, a.images)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *agent) handleState(w http.ResponseWriter, r *http.Request) {
	st, err := a.driver.State(r.Context(), r.PathValue("uuid"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, st)
}

func (a *agent) handleDestroy(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	if err := a.destroy(r.Context(), uuid); err != nil && !fault.Is(err, fault.NotFound) {
		a.fail(w, r, err)
		return
	}
	a.log.Info("instance destroyed", "uuid", uuid, "request_id", r.Header.Get(agentapi.HeaderRequestID))
	w.WriteHeader(http.StatusNoContent)
}

var actionKinds = map[string]bool{
	agentapi.ActionStart: true, agentapi.ActionStop: true, agentapi.ActionReboot: true,
	agentapi.ActionPause: true, agentapi.ActionUnpause: true, agentapi.ActionSuspend: true,
	agentapi.ActionResume: true, agentapi.ActionRebuild: true, agentapi.ActionResize: true,
	agentapi.ActionSnapshot: true, agentapi.ActionConfirm: true, agentapi.ActionRevert: true,
	agentapi.ActionAttachInterface: true, agentapi.ActionDetachInterface: true,
}

// validateAction checks an action's fields for its kind.
func validateAction(uuid string, act *agentapi.Action) error {
	if !actionKinds[act.Kind] {
		return fault.Invalidf("Unknown action %q.", act.Kind)
	}
	switch act.Kind {
	case agentapi.ActionReboot:
		if act.RebootType == "" {
			act.RebootType = agentapi.RebootSoft
		}
		if act.RebootType != agentapi.RebootSoft && act.RebootType != agentapi.RebootHard {
			return fault.Invalidf("Reboot type must be SOFT or HARD.")
		}
	case agentapi.ActionRebuild, agentapi.ActionResize:
		if act.Spec == nil {
			return fault.Invalidf("Action %s needs the instance's new spec.", act.Kind)
		}
		if act.Spec.UUID == "" {
			act.Spec.UUID = uuid
		}
		if act.Spec.UUID != uuid {
			return fault.Invalidf("The spec names another instance than the path.")
		}
		return ValidateSpec(*act.Spec)
	case agentapi.ActionSnapshot:
		if !ValidID(act.SnapshotImageID) {
			return fault.Invalidf("A snapshot needs the image ID to upload to.")
		}
	case agentapi.ActionAttachInterface, agentapi.ActionDetachInterface:
		if act.NIC == nil {
			return fault.Invalidf("Action %s needs the NIC.", act.Kind)
		}
		return validateNIC(*act.NIC)
	}
	return nil
}

func (a *agent) handleAction(w http.ResponseWriter, r *http.Request) {
	opID, err := operationID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var act agentapi.Action
	if err := rest.Decode(r, &act, false); err != nil {
		a.fail(w, r, err)
		return
	}
	uuid := r.PathValue("uuid")
	if err := validateAction(uuid, &act); err != nil {
		a.fail(w, r, err)
		return
	}
	// An unknown instance is refused now rather than reported later, unless
	// this is a retry of an operation already accepted.
	if _, known := a.ops.get(opID); !known {
		if _, err := a.driver.State(r.Context(), uuid); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	err = a.submit(opID, uuid, act.Kind, r.Header.Get(agentapi.HeaderRequestID), func(ctx context.Context) (map[string]string, error) {
		return a.driver.Action(ctx, uuid, act, a.images)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *agent) handleConsoleLog(w http.ResponseWriter, r *http.Request) {
	lines := 0
	if s := r.URL.Query().Get("length"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			a.fail(w, r, fault.Invalidf("length must be a non-negative number of lines."))
			return
		}
		lines = min(n, maxConsoleLines)
	}
	out, err := a.driver.ConsoleLog(r.Context(), r.PathValue("uuid"), lines)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, agentapi.ConsoleLog{Output: out})
}

func (a *agent) handleHealth(w http.ResponseWriter, r *http.Request) {
	inv, err := a.driver.Inventory(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, agentapi.Health{AgentID: a.ctl.credential().AgentID, Hostname: a.cfg.Hostname, Inventory: inv})
}
