package scheduler

import (
	"slices"
	"strings"
)

// HostState is a host with its current usage and limits, as filters and
// weighers see it.
type HostState struct {
	Host  *Host
	Usage Usage
	// Limit is (capacity - reserved) × allocation ratio.
	Limit Resources
}

// Free is what is left under the host's limits.
func (h *HostState) Free() Resources { return h.Limit.Sub(h.Usage.Resources) }

// Filter decides whether a host may take the request.
type Filter interface {
	Name() string
	Pass(h *HostState, r *Request) bool
}

// DefaultFilters returns every filter, cheapest first: Nova's
// ComputeFilter, AvailabilityZoneFilter, RAM, disk and core filters,
// ImagePropertiesFilter, SameHost/DifferentHost filters, server-group
// (anti-)affinity filters and AggregateMultiTenancyIsolation.
func DefaultFilters() []Filter {
	return []Filter{
		onlyHostsFilter{}, computeFilter{}, availabilityZoneFilter{},
		ramFilter{}, diskFilter{}, coreFilter{},
		imagePropertiesFilter{}, sameHostFilter{}, differentHostFilter{},
		affinityFilter{}, antiAffinityFilter{}, tenancyIsolationFilter{},
	}
}

type onlyHostsFilter struct{}

func (onlyHostsFilter) Name() string { return "OnlyHostsFilter" }
func (onlyHostsFilter) Pass(h *HostState, r *Request) bool {
	return len(r.OnlyHosts) == 0 || slices.Contains(r.OnlyHosts, h.Host.ID)
}

// computeFilter passes hosts that are up and enabled.
type computeFilter struct{}

func (computeFilter) Name() string                       { return "ComputeFilter" }
func (computeFilter) Pass(h *HostState, _ *Request) bool { return h.Host.Up && h.Host.Enabled }

type availabilityZoneFilter struct{}

func (availabilityZoneFilter) Name() string { return "AvailabilityZoneFilter" }
func (availabilityZoneFilter) Pass(h *HostState, r *Request) bool {
	return r.AvailabilityZone == "" || h.Host.AvailabilityZone == r.AvailabilityZone
}

type ramFilter struct{}

func (ramFilter) Name() string { return "RamFilter" }
func (ramFilter) Pass(h *HostState, r *Request) bool {
	return h.Usage.MemoryMB+r.Resources.MemoryMB <= h.Limit.MemoryMB
}

type diskFilter struct{}

func (diskFilter) Name() string { return "DiskFilter" }
func (diskFilter) Pass(h *HostState, r *Request) bool {
	return h.Usage.DiskGB+r.Resources.DiskGB <= h.Limit.DiskGB
}

type coreFilter struct{}

func (coreFilter) Name() string { return "CoreFilter" }
func (coreFilter) Pass(h *HostState, r *Request) bool {
	return h.Usage.VCPUs+r.Resources.VCPUs <= h.Limit.VCPUs
}

// imagePropertiesFilter passes hosts that can run the image's hypervisor
// type and architecture, as Nova's ImagePropertiesFilter.
type imagePropertiesFilter struct{}

func (imagePropertiesFilter) Name() string { return "ImagePropertiesFilter" }
func (imagePropertiesFilter) Pass(h *HostState, r *Request) bool {
	p := r.ImageProperties
	if len(p) == 0 {
		return true
	}
	hv := firstProp(p, "img_hv_type", "hypervisor_type")
	if hv != "" {
		hv = strings.ToLower(hv)
		ok := strings.EqualFold(hv, h.Host.HypervisorType) ||
			strings.EqualFold(hv, h.Host.VirtType) ||
			// A QEMU host runs "qemu" guests whatever its acceleration.
			(hv == "qemu" && strings.EqualFold(h.Host.HypervisorType, "QEMU"))
		if !ok {
			return false
		}
	}
	arch := firstProp(p, "hw_architecture", "architecture")
	if arch != "" && h.Host.Arch != "" && canonicalArch(arch) != canonicalArch(h.Host.Arch) {
		return false
	}
	return true
}

func firstProp(p map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := p[k]; v != "" {
			return v
		}
	}
	return ""
}

// canonicalArch maps architecture aliases to Nova's canonical names.
func canonicalArch(a string) string {
	switch a = strings.ToLower(a); a {
	case "amd64", "x64", "x86-64":
		return "x86_64"
	case "i386", "i486", "i586", "x86":
		return "i686"
	case "arm64":
		return "aarch64"
	}
	return a
}

type sameHostFilter struct{}

func (sameHostFilter) Name() string { return "SameHostFilter" }
func (sameHostFilter) Pass(h *HostState, r *Request) bool {
	return len(r.SameHost) == 0 || slices.Contains(r.SameHost, h.Host.ID)
}

type differentHostFilter struct{}

func (differentHostFilter) Name() string { return "DifferentHostFilter" }
func (differentHostFilter) Pass(h *HostState, r *Request) bool {
	return !slices.Contains(r.DifferentHost, h.Host.ID)
}

// affinityFilter keeps an affinity group's members on the hosts it already
// uses (any host for the first member).
type affinityFilter struct{}

func (affinityFilter) Name() string { return "ServerGroupAffinityFilter" }
func (affinityFilter) Pass(h *HostState, r *Request) bool {
	g := r.Group
	if g == nil || g.Policy != PolicyAffinity {
		return true
	}
	used := false
	for hostID, n := range g.Members {
		if n > 0 {
			used = true
			if hostID == h.Host.ID {
				return true
			}
		}
	}
	return !used
}

// antiAffinityFilter keeps an anti-affinity group's members on different
// hosts, allowing max_server_per_host per host.
type antiAffinityFilter struct{}

func (antiAffinityFilter) Name() string { return "ServerGroupAntiAffinityFilter" }
func (antiAffinityFilter) Pass(h *HostState, r *Request) bool {
	g := r.Group
	if g == nil || g.Policy != PolicyAntiAffinity {
		return true
	}
	max := g.MaxServerPerHost
	if max <= 0 {
		max = 1
	}
	return g.Members[h.Host.ID] < max
}

// tenancyIsolationFilter is Nova's AggregateMultiTenancyIsolation: a host
// in an aggregate with filter_tenant_id metadata (or filter_tenant_id_*
// keys) takes only those projects' instances.
type tenancyIsolationFilter struct{}

func (tenancyIsolationFilter) Name() string { return "AggregateMultiTenancyIsolation" }
func (tenancyIsolationFilter) Pass(h *HostState, r *Request) bool {
	restricted := false
	for _, a := range h.Host.Aggregates {
		for k, v := range a.Metadata {
			if k != "filter_tenant_id" && !strings.HasPrefix(k, "filter_tenant_id_") {
				continue
			}
			restricted = true
			for _, t := range strings.Split(v, ",") {
				if strings.TrimSpace(t) == r.ProjectID {
					return true
				}
			}
		}
	}
	return !restricted
}
