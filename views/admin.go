package views

import (
	"fmt"
	"strconv"
	"time"
)

// Nav keys and URLs of the admin overview, images, networking and quota
// pages.
const (
	NavAdminOverview    = "admin/overview"
	NavAdminImages      = "admin/images"
	NavAdminNetworks    = "admin/networks"
	NavAdminRouters     = "admin/routers"
	NavAdminFloatingIPs = "admin/floating-ips"
	NavAdminQuotas      = "admin/quotas"

	AdminOverviewURL    = "/admin/overview"
	AdminImagesURL      = "/admin/images"
	AdminNetworksURL    = "/admin/networks"
	AdminRoutersURL     = "/admin/routers"
	AdminFloatingIPsURL = "/admin/floating-ips"
	AdminQuotasURL      = "/admin/quotas"
)

// CloudTotals sums the hypervisors for the admin overview.
type CloudTotals struct {
	Hypervisors int
	Up          int
	VCPUsUsed   int64
	VCPUs       int64
	RAMUsed     int64
	RAM         int64
	DiskUsed    int64
	Disk        int64
	RunningVMs  int
}

// AdminOverview is Admin → Overview: the cloud's capacity and use.
type AdminOverview struct {
	Totals      CloudTotals
	Hypervisors []HypervisorRow
}

// AdminImageRow is one image of any project.
type AdminImageRow struct {
	ID         string
	Name       string
	Owner      string // the owning project's name, or its ID
	Status     string
	Visibility string
	DiskFormat string
	Size       string
	Protected  bool
}

// AdminImageList is Admin → Images.
type AdminImageList struct {
	Rows     []AdminImageRow
	NextURL  string
	FirstURL string
}

// AdminNetworkRow is one network of any project.
type AdminNetworkRow struct {
	ID              string
	Name            string
	Project         string
	External        bool
	Shared          bool
	Type            string
	PhysicalNetwork string
	Segmentation    string
	Subnets         []string // CIDRs
	Status          string
}

// AdminNetworkList is Admin → Networks.
type AdminNetworkList struct {
	Rows  []AdminNetworkRow
	Pager Pager
}

// ExternalNetworkForm creates a provider network marked external, with
// its subnet.
type ExternalNetworkForm struct {
	Form
	Name            string
	Type            string // flat or vlan
	PhysicalNetwork string
	SegmentationID  string
	Shared          bool
	CIDR            string
	Gateway         string
	PoolStart       string
	PoolEnd         string
	DHCP            bool
	Types           []Option
}

// AdminRouterRow is one router of any project.
type AdminRouterRow struct {
	ID              string
	Name            string
	Project         string
	Status          string
	ExternalNetwork string // the gateway's network name, "" without one
	ExternalIPs     []string
}

// AdminRouterList is Admin → Routers.
type AdminRouterList struct {
	Rows  []AdminRouterRow
	Pager Pager
}

// AdminFloatingIPRow is one floating IP of any project.
type AdminFloatingIPRow struct {
	ID      string
	Address string
	Project string
	Pool    string
	FixedIP string // "" when not associated
	Status  string
}

// AdminFloatingIPList is Admin → Floating IPs.
type AdminFloatingIPList struct {
	Rows  []AdminFloatingIPRow
	Pager Pager
}

// QuotaRow is one resource's limit and use. Limit -1 is unlimited.
type QuotaRow struct {
	Resource string // the API's name, also the form field's
	Label    string
	Unit     string
	Used     int64
	Limit    int64
	// Value and Error are what the edit form shows.
	Value string
	Error string
}

// Unlimited reports whether the resource has no limit.
func (q QuotaRow) Unlimited() bool { return q.Limit < 0 }

// UsedText is "3 of 10", "3 (no limit)" and the like, with the unit.
func (q QuotaRow) UsedText() string {
	if q.Limit < 0 {
		return strconv.FormatInt(q.Used, 10) + q.Unit + " used, no limit"
	}
	return fmt.Sprintf("%d%s of %d%s", q.Used, q.Unit, q.Limit, q.Unit)
}

// Over reports whether use exceeds the limit (a lowered quota).
func (q QuotaRow) Over() bool { return q.Limit >= 0 && q.Used > q.Limit }

// QuotaSection is one service's quotas for a project, with the form that
// edits them.
type QuotaSection struct {
	Form
	Service string // compute or network
	Title   string
	Rows    []QuotaRow
	// LoadError says why the section could not be read.
	LoadError string
}

// AdminQuotas is Admin → Quotas for one project.
type AdminQuotas struct {
	ProjectID   string
	ProjectName string
	Projects    []Option
	Sections    []QuotaSection
}

// ProjectUsage is the project overview's quota use and its usage over a
// period.
type ProjectUsage struct {
	// Quotas are the bars; QuotaError says why some could not be read.
	Quotas     []QuotaRow
	QuotaError string
	// HasUsage shows the period report (compute exists).
	HasUsage bool
	Start    string // yyyy-mm-dd
	End      string
	// PeriodError is a fault with the period, in the user's words;
	// PeriodField names the date it is about ("start" or "end"), if one.
	PeriodError   string
	PeriodField   string
	InstanceHours float64
	VCPUHours     float64
	RAMHours      float64 // MB-hours
	DiskHours     float64 // GB-hours
	Servers       []ServerUsageRow
}

// ServerUsageRow is one instance's share of the period.
type ServerUsageRow struct {
	ID      string
	Name    string
	Flavor  string
	VCPUs   int64
	RAM     int64
	Disk    int64
	Hours   float64
	State   string
	Started time.Time
}

// Hours shows a number of hours (or unit-hours) to two decimals.
func Hours(h float64) string { return strconv.FormatFloat(h, 'f', 2, 64) }
