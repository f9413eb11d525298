package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// vm_state values, as Nova's.
const (
	VMActive    = "active"
	VMBuilding  = "building"
	VMPaused    = "paused"
	VMSuspended = "suspended"
	VMStopped   = "stopped"
	VMResized   = "resized"
	VMError     = "error"
	VMDeleted   = "deleted"
)

// task_state values, as Nova's; "" is none (null).
const (
	TaskNone            = ""
	TaskScheduling      = "scheduling"
	TaskNetworking      = "networking"
	TaskSpawning        = "spawning"
	TaskPoweringOff     = "powering-off"
	TaskPoweringOn      = "powering-on"
	TaskRebooting       = "rebooting"
	TaskRebootingHard   = "rebooting_hard"
	TaskPausing         = "pausing"
	TaskUnpausing       = "unpausing"
	TaskSuspending      = "suspending"
	TaskResuming        = "resuming"
	TaskRebuilding      = "rebuilding"
	TaskResizePrep      = "resize_prep"
	TaskResizeMigrate   = "resize_migrating"
	TaskResizeConfirm   = "resize_confirming"
	TaskResizeReverting = "resize_reverting"
	TaskImageSnapshot   = "image_snapshot"
	TaskDeleting        = "deleting"
)

// FlavorInfo is the copy of a flavor a server keeps, so deleting or
// changing the flavor never changes the server.
type FlavorInfo struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	VCPUs       int64             `json:"vcpus"`
	MemoryMB    int64             `json:"memory_mb"`
	RootGB      int64             `json:"root_gb"`
	EphemeralGB int64             `json:"ephemeral_gb"`
	SwapMB      int64             `json:"swap_mb"`
	ExtraSpecs  map[string]string `json:"extra_specs"`
}

func flavorInfo(f *Flavor) FlavorInfo {
	specs := map[string]string{}
	for k, v := range f.ExtraSpecs {
		specs[k] = v
	}
	return FlavorInfo{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, MemoryMB: f.MemoryMB, RootGB: f.RootGB,
		EphemeralGB: f.EphemeralGB, SwapMB: f.SwapMB, ExtraSpecs: specs}
}

// Fault is why a server is in ERROR, or why its last action failed.
type Fault struct {
	Code    int
	Message string
	Details string
	Created time.Time
}

// SchedulerHints are the os:scheduler_hints a server was created with.
type SchedulerHints struct {
	Group         string   `json:"group,omitempty"`
	SameHost      []string `json:"same_host,omitempty"`
	DifferentHost []string `json:"different_host,omitempty"`
}

// imageMeta is what a server keeps of its image: what the agent needs to
// fetch it and what the scheduler filters on.
type imageMeta struct {
	ID          string            `json:"id"`
	DiskFormat  string            `json:"disk_format"`
	Size        int64             `json:"size"`
	VirtualSize int64             `json:"virtual_size"`
	MinRAMMB    int64             `json:"min_ram"`
	MinDiskGB   int64             `json:"min_disk"`
	Checksum    string            `json:"checksum"`
	Properties  map[string]string `json:"properties,omitempty"`
}

func imageMetaOf(im *ImageInfo) imageMeta {
	return imageMeta{ID: im.ID, DiskFormat: im.DiskFormat, Size: im.Size, VirtualSize: im.VirtualSize,
		MinRAMMB: im.MinRAMMB, MinDiskGB: im.MinDiskGB, Checksum: im.OSHashValue, Properties: im.Properties}
}

// Server is an instance.
type Server struct {
	ID          string
	Seq         int64
	ProjectID   string
	UserID      string
	Name        string
	Hostname    string
	Description *string
	ImageRef    string
	image       imageMeta
	Flavor      FlavorInfo
	// OldFlavor is set while a resize awaits confirmation.
	OldFlavor   *FlavorInfo
	NewFlavor   *FlavorInfo
	KeyName     string
	KeyData     string
	UserData    string // base64, as given
	ConfigDrive bool
	// AvailabilityZone is the zone of the server's host, or the requested
	// one before it has a host.
	AvailabilityZone string
	// Networks is "none", "auto" (nothing attached) or the JSON plan of
	// the networks and ports it asked for.
	Networks string
	// nics are the NICs allocated by the build in progress.
	nics       []agentapi.NIC
	Hints      SchedulerHints
	VMState    string
	TaskState  string
	PowerState int
	HostID     string
	// Node is the host's hostname (Nova's host and hypervisor_hostname).
	Node          string
	VNCPort       int
	Locked        bool
	LockedBy      string // "owner" or "admin"
	LockedReason  *string
	AccessIPv4    string
	AccessIPv6    string
	ReservationID string
	LaunchIndex   int
	Progress      int
	Fault         *Fault
	Metadata      map[string]string
	// ServerGroups are the IDs of the groups the server belongs to.
	ServerGroups []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LaunchedAt   *time.Time
	TerminatedAt *time.Time
	DeletedAt    *time.Time
	Deleted      bool
}

// Status is the server's API status, derived from vm_state and task_state
// exactly as Nova's _STATE_MAP.
func (s *Server) Status() string { return statusOf(s.VMState, s.TaskState) }

func statusOf(vm, task string) string {
	switch vm {
	case VMActive:
		switch task {
		case TaskRebooting:
			return "REBOOT"
		case TaskRebootingHard:
			return "HARD_REBOOT"
		case TaskRebuilding:
			return "REBUILD"
		case TaskResizePrep, TaskResizeMigrate:
			return "RESIZE"
		}
		return "ACTIVE"
	case VMBuilding:
		return "BUILD"
	case VMStopped:
		switch task {
		case TaskResizePrep, TaskResizeMigrate:
			return "RESIZE"
		case TaskRebuilding:
			return "REBUILD"
		}
		return "SHUTOFF"
	case VMResized:
		if task == TaskResizeReverting {
			return "REVERT_RESIZE"
		}
		return "VERIFY_RESIZE"
	case VMPaused:
		return "PAUSED"
	case VMSuspended:
		return "SUSPENDED"
	case VMError:
		if task == TaskRebuilding {
			return "REBUILD"
		}
		return "ERROR"
	case VMDeleted:
		return "DELETED"
	}
	return "UNKNOWN"
}

// statusStates maps an API status back to the vm_states (and, when it
// depends on them, task_states) it covers, for the status filter.
var statusStates = map[string][][2]string{
	"ACTIVE":        {{VMActive, ""}},
	"BUILD":         {{VMBuilding, "*"}},
	"SHUTOFF":       {{VMStopped, ""}},
	"PAUSED":        {{VMPaused, "*"}},
	"SUSPENDED":     {{VMSuspended, "*"}},
	"ERROR":         {{VMError, ""}},
	"DELETED":       {{VMDeleted, "*"}},
	"REBOOT":        {{VMActive, TaskRebooting}},
	"HARD_REBOOT":   {{VMActive, TaskRebootingHard}},
	"REBUILD":       {{VMActive, TaskRebuilding}, {VMStopped, TaskRebuilding}, {VMError, TaskRebuilding}},
	"RESIZE":        {{VMActive, TaskResizePrep}, {VMActive, TaskResizeMigrate}, {VMStopped, TaskResizePrep}, {VMStopped, TaskResizeMigrate}},
	"VERIFY_RESIZE": {{VMResized, ""}},
	"REVERT_RESIZE": {{VMResized, TaskResizeReverting}},
}

// ValidStatus reports whether status (any case) is one the status filter knows.
func ValidStatus(status string) bool {
	_, ok := statusStates[strings.ToUpper(status)]
	return ok
}

// InstanceName is the server's hypervisor-side name, as Nova's instance_name.
func (s *Server) InstanceName() string { return fmt.Sprintf("instance-%08x", s.Seq) }

// HostDigest is Nova's hostId: an opaque digest of the project and host, so
// a project can tell whether two of its servers share a host without
// learning the host.
func (s *Server) HostDigest() string {
	if s.Node == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(s.ProjectID + s.Node))
	return hex.EncodeToString(sum[:])
}

func errServerNotFound(id string) error {
	return fault.NotFoundf("Instance %s could not be found.", id)
}

func (s *Server) target() map[string]string {
	return map[string]string{"project_id": s.ProjectID, "user_id": s.UserID}
}

// serverFor returns server id if the caller may see it and may perform
// action on it; another project's server is NotFound, like a missing one.
func (s *Service) serverFor(ctx context.Context, id, action string) (*Server, *auth.Credentials, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	srv, err := s.st.getServer(ctx, s.st.db, id)
	if err != nil {
		return nil, nil, err
	}
	if !c.IsAdmin() && srv.ProjectID != c.ProjectID {
		return nil, nil, errServerNotFound(id)
	}
	if _, err := s.authorize(ctx, action, srv.target()); err != nil {
		return nil, nil, err
	}
	return srv, c, nil
}

// GetServer returns server id. Kinds: NotFound (also for another project's
// server), Forbidden.
func (s *Service) GetServer(ctx context.Context, id string) (*Server, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:servers:show")
	return srv, err
}

// ServerFilter selects servers to list.
type ServerFilter struct {
	// AllTenants lists every project's servers (admins); ProjectID then
	// narrows to one project.
	AllTenants bool
	ProjectID  string
	UserID     string
	// Name is a regular expression matched anywhere in the name.
	Name string
	// Statuses are API statuses (ACTIVE, SHUTOFF, ...), any of which matches.
	Statuses []string
	// Host is a hostname (admins).
	Host             string
	Image            string
	Flavor           string
	AvailabilityZone string
	ReservationID    string
	Locked           *bool
	// ChangesSince and ChangesBefore bound updated_at; with ChangesSince,
	// deleted servers are listed too (status DELETED), as Nova does.
	ChangesSince  *time.Time
	ChangesBefore *time.Time
	// Deleted lists only deleted servers (admins).
	Deleted bool
	Limit   int
	Marker  string
	// SortKeys and SortDirs are Nova's sort_key/sort_dir pairs; default
	// created_at desc.
	SortKeys []string
	SortDirs []string
}

// ListServers returns the servers the caller may see that match f. Admin
// filters (host, all_tenants, deleted, ...) are ignored for others, as
// Nova ignores them. Kinds: Invalid (bad regex, sort key or unknown
// marker), Forbidden.
func (s *Service) ListServers(ctx context.Context, f ServerFilter) ([]Server, error) {
	c, err := s.authorize(ctx, "os_compute_api:servers:detail", projectTarget(callerProject(ctx), ""))
	if err != nil {
		return nil, err
	}
	admin := s.allowed(ctx, policyAllFilters, projectTarget(c.ProjectID, c.UserID))
	q := serverQuery{projectID: c.ProjectID}
	if f.AllTenants && s.allowed(ctx, policyListAll, projectTarget(c.ProjectID, c.UserID)) {
		q.projectID = f.ProjectID
	} else if admin && f.ProjectID != "" {
		q.projectID = f.ProjectID
	}
	if admin {
		q.host, q.deletedOnly = f.Host, f.Deleted
	}
	q.changesSince, q.changesBefore = f.ChangesSince, f.ChangesBefore
	q.withDeleted = f.ChangesSince != nil || q.deletedOnly
	var re *regexp.Regexp
	if f.Name != "" {
		if re, err = regexp.Compile(f.Name); err != nil {
			return nil, fault.Invalidf("Invalid name filter %q: %v", f.Name, err)
		}
	}
	all, err := s.st.listServers(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Server
	for _, srv := range all {
		if re != nil && !re.MatchString(srv.Name) {
			continue
		}
		if len(f.Statuses) > 0 && !slices.ContainsFunc(f.Statuses, func(st string) bool { return strings.EqualFold(st, srv.Status()) }) {
			continue
		}
		if f.Image != "" && srv.ImageRef != f.Image {
			continue
		}
		if f.Flavor != "" && srv.Flavor.ID != f.Flavor {
			continue
		}
		if f.AvailabilityZone != "" && srv.AvailabilityZone != f.AvailabilityZone {
			continue
		}
		if f.ReservationID != "" && srv.ReservationID != f.ReservationID {
			continue
		}
		if f.UserID != "" && srv.UserID != f.UserID {
			continue
		}
		if f.Locked != nil && srv.Locked != *f.Locked {
			continue
		}
		out = append(out, srv)
	}
	if err := sortServers(out, f.SortKeys, f.SortDirs); err != nil {
		return nil, err
	}
	return pageBy(out, f.Marker, f.Limit, func(s Server) string { return s.ID })
}

func callerProject(ctx context.Context) string {
	if c, ok := auth.FromContext(ctx); ok {
		return c.ProjectID
	}
	return ""
}

// sortServers orders servers by Nova's sort keys, with uuid breaking ties.
func sortServers(ss []Server, keys, dirs []string) error {
	if len(keys) == 0 {
		keys = []string{"created_at"}
	}
	type cmpFn func(a, b *Server) int
	var fns []cmpFn
	for i, k := range keys {
		dir := "desc"
		if i < len(dirs) {
			dir = dirs[i]
		} else if len(dirs) > 0 {
			dir = dirs[len(dirs)-1]
		}
		if dir != "asc" && dir != "desc" {
			return fault.Invalidf("Invalid input for query parameters sort_dir. Value: %s.", dir)
		}
		var f cmpFn
		switch k {
		case "created_at":
			f = func(a, b *Server) int { return a.CreatedAt.Compare(b.CreatedAt) }
		case "updated_at":
			f = func(a, b *Server) int { return a.UpdatedAt.Compare(b.UpdatedAt) }
		case "display_name", "name":
			f = func(a, b *Server) int { return strings.Compare(a.Name, b.Name) }
		case "uuid", "id":
			f = func(a, b *Server) int { return strings.Compare(a.ID, b.ID) }
		case "vm_state":
			f = func(a, b *Server) int { return strings.Compare(a.VMState, b.VMState) }
		case "task_state":
			f = func(a, b *Server) int { return strings.Compare(a.TaskState, b.TaskState) }
		case "power_state":
			f = func(a, b *Server) int { return a.PowerState - b.PowerState }
		case "availability_zone":
			f = func(a, b *Server) int { return strings.Compare(a.AvailabilityZone, b.AvailabilityZone) }
		case "host", "node":
			f = func(a, b *Server) int { return strings.Compare(a.Node, b.Node) }
		case "image_ref":
			f = func(a, b *Server) int { return strings.Compare(a.ImageRef, b.ImageRef) }
		case "instance_type_id", "flavor":
			f = func(a, b *Server) int { return strings.Compare(a.Flavor.ID, b.Flavor.ID) }
		case "launched_at":
			f = func(a, b *Server) int { return timeOr(a.LaunchedAt).Compare(timeOr(b.LaunchedAt)) }
		case "hostname":
			f = func(a, b *Server) int { return strings.Compare(a.Hostname, b.Hostname) }
		case "project_id":
			f = func(a, b *Server) int { return strings.Compare(a.ProjectID, b.ProjectID) }
		case "user_id":
			f = func(a, b *Server) int { return strings.Compare(a.UserID, b.UserID) }
		case "memory_mb":
			f = func(a, b *Server) int { return int(a.Flavor.MemoryMB - b.Flavor.MemoryMB) }
		case "vcpus":
			f = func(a, b *Server) int { return int(a.Flavor.VCPUs - b.Flavor.VCPUs) }
		default:
			return fault.Invalidf("Invalid input for query parameters sort_key. Value: %s.", k)
		}
		if dir == "desc" {
			g := f
			f = func(a, b *Server) int { return -g(a, b) }
		}
		fns = append(fns, f)
	}
	lastDesc := len(dirs) == 0 || dirs[len(dirs)-1] == "desc"
	// Sort pointers: a Server is large, and moving values dominated the
	// time of listing a project with a thousand instances.
	ptrs := make([]*Server, len(ss))
	for i := range ss {
		ptrs[i] = &ss[i]
	}
	slices.SortStableFunc(ptrs, func(a, b *Server) int {
		for _, f := range fns {
			if r := f(a, b); r != 0 {
				return r
			}
		}
		r := strings.Compare(a.ID, b.ID)
		if lastDesc {
			r = -r
		}
		return r
	})
	sorted := make([]Server, len(ss))
	for i, p := range ptrs {
		sorted[i] = *p
	}
	copy(ss, sorted)
	return nil
}

func timeOr(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ServerUpdate changes a server's name, description or access IPs; nil
// fields are unchanged.
type ServerUpdate struct {
	Name        *string
	Description **string
	AccessIPv4  *string
	AccessIPv6  *string
}

// UpdateServer applies u to server id. Kinds: NotFound, Forbidden, Invalid.
func (s *Service) UpdateServer(ctx context.Context, id string, u ServerUpdate) (*Server, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:servers:update")
	if err != nil {
		return nil, err
	}
	if u.Name != nil {
		if err := checkServerName(*u.Name); err != nil {
			return nil, err
		}
	}
	if u.Description != nil && *u.Description != nil && len(**u.Description) > 255 {
		return nil, fault.Invalidf("Invalid input for field/attribute description. It is longer than 255 characters.")
	}
	if err := s.st.updateServer(ctx, srv.ID, u, s.now()); err != nil {
		return nil, err
	}
	s.changed(ctx, srv.ID, nil)
	return s.st.getServer(ctx, s.st.db, srv.ID)
}

// checkServerName validates a server name as Nova's schema: 1 to 255
// characters, no control characters.
func checkServerName(name string) error {
	if len(name) == 0 || len(name) > 255 {
		return fault.Invalidf("Invalid input for field/attribute name. Value: %s. A server name must be 1 to 255 characters.", name)
	}
	if strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fault.Invalidf("Invalid input for field/attribute name. Value: %q. Control characters are not allowed.", name)
	}
	return nil
}

// hostnameOf derives a DNS label from a display name, as Nova's
// sanitize_hostname: lower case, runs of other characters become '-'.
func hostnameOf(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r == '.' || r == '_':
			// dropped, as Nova drops them
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}
