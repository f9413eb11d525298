// Package agentapi is the wire contract between the Nimbus control plane and
// its node agents: the JSON types both sides exchange, the paths, and the
// request signing that authenticates every call in either direction. It
// depends on nothing but the standard library so the agent and the
// controller's client share it without sharing anything else.
package agentapi

import "time"

// Controller-side paths, served by the control plane for agents.
const (
	// PathJoin exchanges a join token for an agent credential. Not signed:
	// the join token authenticates it.
	PathJoin = "/agents/v1/join"
	// PathHeartbeat carries inventory and instance power states.
	PathHeartbeat = "/agents/v1/heartbeat"
	// PathEvents carries lifecycle events as they happen.
	PathEvents = "/agents/v1/events"
	// PathOperations is where the agent posts the outcome of long work;
	// the operation ID follows: /agents/v1/operations/{id}.
	PathOperations = "/agents/v1/operations/"
	// PathImages serves image content to agents and takes snapshot
	// uploads: /agents/v1/images/{id}/file.
	PathImages = "/agents/v1/images/"
)

// Agent-side paths, served by each agent for the control plane.
const (
	// PathInstances: GET lists instances; /agent/v1/instances/{uuid} is
	// PUT (spawn, idempotent), GET (state), DELETE (destroy, idempotent).
	PathInstances = "/agent/v1/instances"
	// Sub-resources of an instance: POST .../actions, GET .../console-log,
	// GET .../vnc (a websocket carrying the raw VNC stream).
	SubActions    = "/actions"
	SubConsoleLog = "/console-log"
	SubVNC        = "/vnc"
	// PathHealth answers 200 with Health; signed like every other call.
	PathHealth = "/agent/v1/health"
)

// Signing headers. Every request in either direction (but the join) carries
// them; see Sign and Verify.
const (
	HeaderAgentID   = "X-Nimbus-Agent-Id"
	HeaderTimestamp = "X-Nimbus-Timestamp"
	HeaderNonce     = "X-Nimbus-Nonce"
	HeaderSignature = "X-Nimbus-Signature"
	// HeaderRequestID carries the control plane's request ID to the agent
	// (X-Openstack-Request-Id), so one ID follows a request through every hop.
	HeaderRequestID = "X-Openstack-Request-Id"
	// HeaderOperationID names the operation an agent call belongs to; a
	// retried call with the same operation ID does the work only once.
	HeaderOperationID = "X-Nimbus-Operation-Id"
)

// JoinRequest is the body of POST PathJoin.
type JoinRequest struct {
	JoinToken string `json:"join_token"`
	// Hostname is the name the host is known by in os-hypervisors and
	// os-services; unique per cloud.
	Hostname string `json:"hostname"`
	// URL is where the control plane reaches this agent's API.
	URL       string    `json:"url"`
	Inventory Inventory `json:"inventory"`
}

// JoinResponse returns the agent's own credential. The secret is shown once;
// a re-join with a valid join token under the same hostname rotates it.
type JoinResponse struct {
	AgentID string `json:"agent_id"`
	// Secret is the base64 HMAC key both sides sign with.
	Secret string `json:"secret"`
	// HeartbeatSeconds is how often the controller expects a heartbeat.
	HeartbeatSeconds int `json:"heartbeat_seconds"`
}

// Inventory is what a host offers.
type Inventory struct {
	VCPUs             int    `json:"vcpus"`
	MemoryMB          int64  `json:"memory_mb"`
	DiskGB            int64  `json:"disk_gb"`
	HypervisorType    string `json:"hypervisor_type"`    // "QEMU"
	HypervisorVersion int64  `json:"hypervisor_version"` // libvirt's encoding: major*1000000+minor*1000+release
	VirtType          string `json:"virt_type"`          // "kvm" or "qemu"
	CPUInfo           string `json:"cpu_info"`           // JSON text, as Nova reports it
	HostIP            string `json:"host_ip"`
}

// Heartbeat is the body of POST PathHeartbeat.
type Heartbeat struct {
	AgentID   string    `json:"agent_id"`
	Inventory Inventory `json:"inventory"`
	// Instances lists every Nimbus domain on the host, including ones the
	// controller may no longer know; it answers with the orphans.
	Instances []InstanceState `json:"instances"`
	Time      time.Time       `json:"time"`
	// URL, when set, is where the agent's API is reachable now; the
	// controller updates the host's URL, so an agent whose address changed
	// (a restart on another port, a new DHCP lease) needs no new join token.
	URL string `json:"url,omitempty"`
}

// HeartbeatResponse may tell the agent what the controller no longer knows.
type HeartbeatResponse struct {
	// Orphans are instance UUIDs the agent reported that the controller has
	// deleted or never had; the agent destroys them.
	Orphans []string `json:"orphans,omitempty"`
}

// Power states, with Nova's numeric values.
const (
	PowerNoState   = 0
	PowerRunning   = 1
	PowerPaused    = 3
	PowerShutdown  = 4
	PowerCrashed   = 6
	PowerSuspended = 7
)

// InstanceState is an instance as the agent sees it.
type InstanceState struct {
	UUID       string `json:"uuid"`
	PowerState int    `json:"power_state"`
	// VNCPort is the loopback port of the instance's VNC server, 0 if none.
	VNCPort int `json:"vnc_port,omitempty"`
	// Error is set when the agent could not read the domain's state.
	Error string `json:"error,omitempty"`
}

// Event kinds, reported as libvirt lifecycle events arrive.
const (
	EventStarted   = "started"
	EventStopped   = "stopped"
	EventPaused    = "paused"
	EventResumed   = "resumed"
	EventSuspended = "suspended"
	EventCrashed   = "crashed"
	EventShutdown  = "shutdown"
	EventRebooted  = "rebooted"
	EventDeleted   = "deleted"
)

// Event is one lifecycle change of an instance.
type Event struct {
	UUID       string    `json:"uuid"`
	Kind       string    `json:"kind"`
	PowerState int       `json:"power_state"`
	Time       time.Time `json:"time"`
}

// Events is the body of POST PathEvents.
type Events struct {
	AgentID string  `json:"agent_id"`
	Events  []Event `json:"events"`
}

// InstanceSpec is the body of PUT /agent/v1/instances/{uuid}: everything the
// agent needs to build the instance. Spawning an instance that already
// exists with the same UUID is a no-op that reports the existing one.
type InstanceSpec struct {
	UUID      string `json:"uuid"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	VCPUs     int    `json:"vcpus"`
	MemoryMB  int64  `json:"memory_mb"`
	RootGB    int64  `json:"root_gb"`
	// EphemeralGB and SwapMB add extra disks when non-zero.
	EphemeralGB int64 `json:"ephemeral_gb,omitempty"`
	SwapMB      int64 `json:"swap_mb,omitempty"`
	Image       Image `json:"image"`
	// ConfigDrive, when set, is attached as an ISO9660 drive labelled config-2.
	ConfigDrive *ConfigDrive `json:"config_drive,omitempty"`
	// NICs are attached in order; empty for networks "none".
	NICs []NIC `json:"nics,omitempty"`
}

// Image identifies the base image; the agent fetches its content once per
// host from PathImages and verifies its checksum.
type Image struct {
	ID         string `json:"id"`
	DiskFormat string `json:"disk_format"` // qcow2, raw, iso
	Size       int64  `json:"size"`
	// Checksum is the image's sha512 (os_hash_value) the download must match.
	Checksum string `json:"checksum"`
}

// ConfigDrive holds the files of an OpenStack config drive, by path inside
// the drive (e.g. "openstack/latest/meta_data.json").
type ConfigDrive struct {
	Files map[string][]byte `json:"files"`
}

// NIC is one virtual network interface: a tap named TapName on Bridge.
type NIC struct {
	PortID  string `json:"port_id"`
	MAC     string `json:"mac"`
	Bridge  string `json:"bridge"`
	TapName string `json:"tap_name"`
	MTU     int    `json:"mtu,omitempty"`
}

// Operation is how the agent reports long work (spawn, actions) back.
type Operation struct {
	ID     string `json:"id"`
	UUID   string `json:"uuid"`
	Kind   string `json:"kind"`   // "spawn", "destroy" or an Action kind
	Status string `json:"status"` // OpSucceeded or OpFailed
	// Error is the user-facing reason when Status is OpFailed.
	Error string `json:"error,omitempty"`
	// Details is the full cause of a failure, for operators: the control
	// plane shows it only to admins (a server fault's details).
	Details    string `json:"details,omitempty"`
	PowerState int    `json:"power_state"`
	// Result carries action-specific output, such as a snapshot's image ID.
	Result map[string]string `json:"result,omitempty"`
}

// Operation outcomes.
const (
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
)

// Action kinds for POST .../actions.
const (
	ActionStart    = "start"
	ActionStop     = "stop"
	ActionReboot   = "reboot"
	ActionPause    = "pause"
	ActionUnpause  = "unpause"
	ActionSuspend  = "suspend"
	ActionResume   = "resume"
	ActionRebuild  = "rebuild"
	ActionResize   = "resize"
	ActionSnapshot = "snapshot"
	ActionConfirm  = "confirm_resize"
	ActionRevert   = "revert_resize"
	// ActionAttachInterface hot-plugs Action.NIC (into the definition too,
	// so it survives a restart); ActionDetachInterface unplugs it. Both
	// succeed when the NIC is already where they would put it.
	ActionAttachInterface = "attach_interface"
	ActionDetachInterface = "detach_interface"
	RebootSoft            = "SOFT"
	RebootHard            = "HARD"
)

// DefaultOpTimeout bounds how long the controller waits for an operation's
// outcome before it marks the instance ERROR.
const DefaultOpTimeout = 10 * time.Minute

// Action is the body of POST /agent/v1/instances/{uuid}/actions. The agent
// answers 202 and posts an Operation to PathOperations+OperationID when done.
type Action struct {
	Kind string `json:"kind"`
	// RebootType is RebootSoft or RebootHard for ActionReboot.
	RebootType string `json:"reboot_type,omitempty"`
	// Spec is the instance's new shape for ActionRebuild and ActionResize.
	Spec *InstanceSpec `json:"spec,omitempty"`
	// SnapshotImageID is the (queued) image that ActionSnapshot uploads to.
	SnapshotImageID string `json:"snapshot_image_id,omitempty"`
	// NIC is the interface of ActionAttachInterface and
	// ActionDetachInterface.
	NIC *NIC `json:"nic,omitempty"`
}

// ConsoleLog is the answer of GET .../console-log?length=N (N last lines).
type ConsoleLog struct {
	Output string `json:"output"`
}

// Health is the answer of GET PathHealth.
type Health struct {
	AgentID   string    `json:"agent_id"`
	Hostname  string    `json:"hostname"`
	Inventory Inventory `json:"inventory"`
}

// Error is the body of every non-2xx answer from either side.
type Error struct {
	// Kind is a fault kind's wire name ("invalid", "not_found", "conflict",
	// "unauthorized", "unavailable", "internal", ...), so the caller maps it
	// back to the same kind.
	Kind    string `json:"kind"`
	Message string `json:"message"`
}
