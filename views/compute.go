package views

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Nav keys and URLs of the compute and image pages.
const (
	NavInstances      = "project/instances"
	NavImages         = "project/images"
	NavKeyPairs       = "project/key-pairs"
	NavHypervisors    = "admin/hypervisors"
	NavAllInstances   = "admin/instances"
	NavFlavors        = "admin/flavors"
	NavComputeService = "admin/services"

	InstancesURL      = "/project/instances"
	ImagesURL         = "/project/images"
	KeyPairsURL       = "/project/key-pairs"
	HypervisorsURL    = "/admin/hypervisors"
	AllInstancesURL   = "/admin/instances"
	FlavorsURL        = "/admin/flavors"
	ComputeServiceURL = "/admin/services"
)

// InstanceRow is one instance in a list, with the actions its state and the
// viewer's role allow.
type InstanceRow struct {
	ID         string
	Name       string
	Image      string
	Flavor     string
	KeyName    string
	Status     string
	PowerState string
	TaskState  string
	Age        string
	Project    string // admin list only
	Host       string // admin list only
	Addresses  []string
	Locked     bool
	Actions    []string // allowed action names, in display order
	// Back is where a plain (non-htmx) action returns.
	Back string
	// Admin selects the admin list's columns.
	Admin bool
	// Detail marks the actions menu of the detail page, whose actions
	// reload the page rather than swap a row.
	Detail bool
}

// Can reports whether action is offered.
func (r InstanceRow) Can(action string) bool {
	for _, a := range r.Actions {
		if a == action {
			return true
		}
	}
	return false
}

// Transitional reports whether the row is about to change (a build or a
// task under way): such a row refreshes itself until it settles.
func (r InstanceRow) Transitional() bool {
	return r.TaskState != "" || r.Status == "BUILD" || r.Status == "REBOOT" || r.Status == "HARD_REBOOT"
}

// Mutable reports whether any action is offered (a reader's rows have none).
func (r InstanceRow) Mutable() bool { return len(r.Actions) > 0 }

// SortLink is one sortable column header.
type SortLink struct {
	Key    string
	Label  string
	URL    string
	Active bool
	Desc   bool
}

// AriaSort is the column's aria-sort value.
func (s SortLink) AriaSort() string {
	if !s.Active {
		return "none"
	}
	if s.Desc {
		return "descending"
	}
	return "ascending"
}

// Arrow is the visual sort indicator.
func (s SortLink) Arrow() string {
	if !s.Active {
		return ""
	}
	if s.Desc {
		return " ▼"
	}
	return " ▲"
}

// InstanceList is Project → Instances (and Admin → All instances).
type InstanceList struct {
	URL       string // the list's own URL
	Admin     bool
	Query     string
	Sort      string
	Dir       string
	Columns   []SortLink
	Rows      []InstanceRow
	NextURL   string
	FirstURL  string // set when not on the first page
	CanLaunch bool
	CanBulk   bool
	Error     string
}

// StatusClass is the CSS class of a status badge.
func StatusClass(status string) string {
	switch strings.ToUpper(status) {
	case "ACTIVE":
		return "badge status-active"
	case "BUILD", "REBOOT", "HARD_REBOOT", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING":
		return "badge status-build"
	case "SHUTOFF", "STOPPED":
		return "badge status-shutoff"
	case "PAUSED":
		return "badge status-paused"
	case "SUSPENDED":
		return "badge status-suspended"
	case "ERROR", "KILLED":
		return "badge status-error"
	case "QUEUED", "SAVING", "UPLOADING", "IMPORTING":
		return "badge status-build"
	case "UP", "ENABLED":
		return "badge status-active"
	case "DOWN":
		return "badge status-error"
	}
	return "badge badge-neutral"
}

// ActionLabel is the button text of an instance action.
func ActionLabel(action string) string {
	switch action {
	case "floating-ip":
		return "Floating IP"
	case "start":
		return "Start"
	case "stop":
		return "Stop"
	case "reboot":
		return "Reboot"
	case "pause":
		return "Pause"
	case "unpause":
		return "Unpause"
	case "suspend":
		return "Suspend"
	case "resume":
		return "Resume"
	case "lock":
		return "Lock"
	case "unlock":
		return "Unlock"
	case "snapshot":
		return "Snapshot"
	case "console":
		return "Console"
	case "delete":
		return "Delete"
	case "resize":
		return "Resize"
	case "rebuild":
		return "Rebuild"
	case "confirm-resize":
		return "Confirm resize"
	case "revert-resize":
		return "Revert resize"
	}
	return action
}

func flavorProjects(n int) string {
	if n == 1 {
		return "1 project"
	}
	return strconv.Itoa(n) + " projects"
}

// DialogAction reports whether an instance action opens a dialog (a form
// or a confirmation) rather than posting at once.
func DialogAction(action string) bool {
	switch action {
	case "snapshot", "floating-ip", "resize", "rebuild":
		return true
	}
	return ConfirmedAction(action)
}

// ConfirmedAction reports whether an action asks first.
func ConfirmedAction(action string) bool {
	return action == "delete" || action == "stop" || action == "reboot"
}

// Age shows how long ago t was, coarsely.
func Age(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// Bytes shows a size in binary units.
func Bytes(n int64) string {
	if n < 0 {
		return "—"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Pct is used/total as a whole percentage clamped to 0..100.
func Pct(used, total int64) int {
	if total <= 0 {
		return 0
	}
	p := int(used * 100 / total)
	if p > 100 {
		return 100
	}
	if p < 0 {
		return 0
	}
	return p
}

// LaunchForm is the launch-instance dialog.
type LaunchForm struct {
	Form
	Name     string
	Count    string
	Zone     string
	Zones    []Option
	Images   []OptionGroup
	Flavors  []Option
	KeyPairs []Option
	Groups   []Option
	// Networks and SecurityGroups are offered when networking exists
	// (HasNetwork); Selected marks the checked boxes.
	HasNetwork bool
	// NewKeyName and NewPublicKey import a key pair with the launch.
	NewKeyName, NewPublicKey string
	// CreateKeyName names a key pair to generate from the dialog;
	// CreatedKey is the one just generated, whose private key is shown
	// and downloaded once.
	CreateKeyName  string
	CreatedKey     *CreatedKey
	Networks       []Option
	SecurityGroups []Option
	UserData       string
	FlavorHint     string
	Quota          []QuotaLine
	ImageChoice    string
}

// CreatedKey is a key pair generated in the launch dialog.
type CreatedKey struct {
	Name       string
	File       string // the download's file name
	PrivateKey string
}

// QuotaLine is one resource a launch uses against what is left.
type QuotaLine struct {
	Label string
	Use   int64
	Used  int64
	Limit int64 // -1 unlimited
	Unit  string
	Over  bool
}

// LeftText is what remains of the quota, in words.
func (q QuotaLine) LeftText() string {
	if q.Limit < 0 {
		return "unlimited"
	}
	left := q.Limit - q.Used
	if left < 0 {
		left = 0
	}
	return fmt.Sprintf("%d%s of %d%s left", left, q.Unit, q.Limit, q.Unit)
}

// InstanceDetail is an instance's page.
type InstanceDetail struct {
	Row         InstanceRow
	ProjectID   string
	UserID      string
	ImageID     string
	FlavorID    string
	FlavorText  string
	Zone        string
	Host        string // admins only
	Created     time.Time
	Launched    string
	Fault       string
	Tab         string
	IsAdmin     bool
	LockReason  string
	Description string
	// Interfaces are the instance's ports; HasNetwork is false without a
	// network service (the section is left out).
	Interfaces []InstanceInterface
	HasNetwork bool
}

// InstanceInterface is one port of an instance.
type InstanceInterface struct {
	PortID         string
	NetworkID      string
	Network        string
	MAC            string
	Status         string
	Fixed          []string
	Floating       []string
	SecurityGroups []string
}

// InstanceTab is a detail tab.
type InstanceTab struct {
	Key   string
	Label string
}

// InstanceTabs are the detail page's tabs.
var InstanceTabs = []InstanceTab{{"overview", "Overview"}, {"log", "Console log"}, {"console", "Console"}, {"actions", "Action log"}}

// ConsoleLog is the console log panel.
type ConsoleLog struct {
	ID    string
	Text  string
	Error string
	Poll  bool
}

// ConsoleView is the console tab.
type ConsoleView struct {
	ID    string
	URL   string
	Error string
}

// ActionLogRow is an instance action with its events.
type ActionLogRow struct {
	Action    string
	RequestID string
	User      string
	Start     time.Time
	Message   string
	Events    []ActionEventRow
}

// ActionEventRow is one event of an action.
type ActionEventRow struct {
	Event  string
	Start  time.Time
	Finish string
	Result string
}

// ActionLog is the action log tab.
type ActionLog struct {
	ID    string
	Rows  []ActionLogRow
	Error string
}

// FloatingIPForm associates a floating IP with an instance: a free
// address of the project or a new one from a pool (Choices), on one of
// the instance's ports; Associated lists what it already has.
type FloatingIPForm struct {
	Form
	InstanceID, InstanceName string
	Choice, PortID           string
	Choices, Ports           []Option
	Associated               []Option
}

// SnapshotForm names a snapshot.
type SnapshotForm struct {
	Form
	Name string
}

// ResizeForm asks for an instance's new flavor.
type ResizeForm struct {
	Form
	Back    string // where the dialog returns
	Current string // the flavor now, described
	Flavor  string
	Flavors []Option
}

// RebuildForm asks for the image an instance is rebuilt from and its name.
type RebuildForm struct {
	Form
	Back   string
	Name   string
	Image  string
	Images []OptionGroup
}

// KeyPairRow is one key pair.
type KeyPairRow struct {
	Name        string
	Type        string
	Fingerprint string
	Created     time.Time
}

// KeyPairList is Project → Key pairs.
type KeyPairList struct {
	Rows     []KeyPairRow
	CanWrite bool
}

// KeyPairForm creates (generates) or imports a key pair.
type KeyPairForm struct {
	Form
	Import    bool
	Name      string
	PublicKey string
}

// ImageRow is one image.
type ImageRow struct {
	ID         string
	Name       string
	Status     string
	Visibility string
	DiskFormat string
	Size       string
	Owned      bool
	Protected  bool
}

// ImageList is Project → Images.
type ImageList struct {
	Rows      []ImageRow
	CanWrite  bool
	CanLaunch bool
	NextURL   string
	FirstURL  string
}

// ImageForm uploads or edits an image.
type ImageForm struct {
	Form
	ID          string
	Name        string
	Visibility  string
	DiskFormat  string
	Visibilitys []Option
	Formats     []Option
}

// HypervisorRow is one host.
type HypervisorRow struct {
	ID         string
	Name       string
	Type       string
	IP         string
	Up         bool
	Enabled    bool
	VCPUsUsed  int64
	VCPUs      int64
	RAMUsed    int64
	RAM        int64
	DiskUsed   int64
	Disk       int64
	RunningVMs int
}

// FlavorRow is one flavor.
type FlavorRow struct {
	ID       string
	Name     string
	VCPUs    int64
	RAM      int64
	Disk     int64
	Public   bool
	Disabled bool
	// Projects counts the projects a private flavor is shared with.
	Projects int
}

// FlavorAccessForm is the dialog that shares a private flavor with
// projects: those that have it, each with a remove button, and a choice of
// the others.
type FlavorAccessForm struct {
	Form
	FlavorID   string
	FlavorName string
	Granted    []Option // project ID and name
	Projects   []Option
}

// FlavorForm creates a flavor.
type FlavorForm struct {
	Form
	ID     string
	Name   string
	VCPUs  string
	RAM    string
	Disk   string
	Public bool
}

// ComputeServiceRow is one compute service.
// NetworkAgentRow is one network agent on the services page.
type NetworkAgentRow struct {
	ID        string
	Type      string
	Binary    string
	Host      string
	Alive     bool
	AdminUp   bool
	Heartbeat time.Time
}

// ServicesPage is the admin's services and agents page: compute services
// always, network agents when there is a network service.
type ServicesPage struct {
	Compute    []ComputeServiceRow
	Agents     []NetworkAgentRow
	HasNetwork bool
}

type ComputeServiceRow struct {
	ID      string
	Host    string
	Zone    string
	Up      bool
	Enabled bool
	Reason  string
	Updated time.Time
}
