package compute

import (
	"context"
	"database/sql"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ComputeService is a host's nova-compute service, as os-services shows it.
type ComputeService struct {
	// ID is the host's ID (the UUID of microversion 2.53); Num is the
	// integer ID of older microversions.
	ID             string
	Num            int64
	Host           string
	Zone           string
	Enabled        bool
	DisabledReason string
	Up             bool
	ForcedDown     bool
	UpdatedAt      time.Time
}

// Hypervisor is a host as os-hypervisors shows it.
type Hypervisor struct {
	ID             string
	Num            int64
	Hostname       string
	Up             bool
	Enabled        bool
	DisabledReason string
	Type           string
	Version        int64
	HostIP         string
	CPUInfo        string
	VCPUs          int64
	MemoryMB       int64
	LocalGB        int64
	Used           scheduler.Usage
	RunningVMs     int
	CreatedAt      time.Time
	LastHeartbeat  time.Time
	ServiceID      string
	ServiceNum     int64
}

// hostList returns the registry's hosts with their integer IDs, numbering
// new hosts on first sight.
func (s *Service) hostList(ctx context.Context) ([]hosts.Host, map[string]int64, error) {
	if s.hosts == nil {
		return nil, map[string]int64{}, nil
	}
	hs, err := s.hosts.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	nums, err := s.st.nodeNums(ctx, hs)
	return hs, nums, err
}

func (st *store) nodeNums(ctx context.Context, hs []hosts.Host) (map[string]int64, error) {
	read := func(q db.Querier) (map[string]int64, error) {
		rows, err := q.QueryContext(ctx, `SELECT host_id, num FROM compute_nodes`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				return nil, err
			}
			out[id] = n
		}
		return out, rows.Err()
	}
	nums, err := read(st.db)
	if err != nil {
		return nil, err
	}
	missing := false
	for _, h := range hs {
		if _, ok := nums[h.ID]; !ok {
			missing = true
		}
	}
	if !missing {
		return nums, nil
	}
	err = st.db.Tx(ctx, func(tx *sql.Tx) error {
		if nums, err = read(tx); err != nil {
			return err
		}
		for _, h := range hs {
			if _, ok := nums[h.ID]; ok {
				continue
			}
			n, err := nextSeq(ctx, tx, "compute_nodes", "num")
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_nodes (host_id, num) VALUES (?, ?)`, h.ID, n); err != nil {
				return err
			}
			nums[h.ID] = n
		}
		return nil
	})
	return nums, err
}

// resolveHost finds a host by its UUID or integer ID.
func (s *Service) resolveHost(ctx context.Context, id string, notFound func() error) (*hosts.Host, int64, error) {
	hs, nums, err := s.hostList(ctx)
	if err != nil {
		return nil, 0, err
	}
	n, nerr := strconv.ParseInt(id, 10, 64)
	for i := range hs {
		if hs[i].ID == id || (nerr == nil && nums[hs[i].ID] == n) {
			return &hs[i], nums[hs[i].ID], nil
		}
	}
	return nil, 0, notFound()
}

func (s *Service) serviceOf(h hosts.Host, num int64, aggs []Aggregate) ComputeService {
	return ComputeService{ID: h.ID, Num: num, Host: h.Hostname, Zone: zoneOfHost(aggs, h.Hostname),
		Enabled: !h.Disabled, DisabledReason: h.DisabledReason, Up: h.Up(s.cfg.Now(), s.hosts.DownAfter()),
		ForcedDown: h.ForcedDown, UpdatedAt: h.LastHeartbeat}
}

// ListComputeServices returns the nova-compute service of every host,
// optionally only host's (a hostname). Kinds: Forbidden.
func (s *Service) ListComputeServices(ctx context.Context, host string) ([]ComputeService, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-services:list"); err != nil {
		return nil, err
	}
	hs, nums, err := s.hostList(ctx)
	if err != nil {
		return nil, err
	}
	aggs, err := s.st.listAggregates(ctx)
	if err != nil {
		return nil, err
	}
	out := []ComputeService{}
	for _, h := range hs {
		if host != "" && h.Hostname != host {
			continue
		}
		out = append(out, s.serviceOf(h, nums[h.ID], aggs))
	}
	return out, nil
}

// ServiceUpdate changes a compute service; nil fields are unchanged.
type ServiceUpdate struct {
	Enabled        *bool
	DisabledReason *string
	ForcedDown     *bool
}

func errServiceNotFound(id string) func() error {
	return func() error { return fault.NotFoundf("Service %s could not be found.", id) }
}

// UpdateComputeService enables or disables scheduling onto a host (with a
// reason) or forces it down, by service ID (UUID or integer). Kinds:
// Forbidden, NotFound, Invalid.
func (s *Service) UpdateComputeService(ctx context.Context, id string, u ServiceUpdate) (*ComputeService, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-services:update"); err != nil {
		return nil, err
	}
	h, _, err := s.resolveHost(ctx, id, errServiceNotFound(id))
	if err != nil {
		return nil, err
	}
	return s.updateService(ctx, h, u)
}

// UpdateComputeServiceByHost is UpdateComputeService by hostname, for the
// legacy os-services/enable, disable and force-down actions. Kinds:
// Forbidden, NotFound, Invalid.
func (s *Service) UpdateComputeServiceByHost(ctx context.Context, host, binary string, u ServiceUpdate) (*ComputeService, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-services:update"); err != nil {
		return nil, err
	}
	if binary != "nova-compute" {
		return nil, fault.NotFoundf("Service %s on host %s could not be found.", binary, host)
	}
	h, _, err := s.resolveHostname(ctx, host)
	if err != nil {
		return nil, err
	}
	return s.updateService(ctx, h, u)
}

func (s *Service) resolveHostname(ctx context.Context, host string) (*hosts.Host, int64, error) {
	hs, nums, err := s.hostList(ctx)
	if err != nil {
		return nil, 0, err
	}
	for i := range hs {
		if hs[i].Hostname == host {
			return &hs[i], nums[hs[i].ID], nil
		}
	}
	return nil, 0, fault.NotFoundf("Compute host %s could not be found.", host)
}

func (s *Service) updateService(ctx context.Context, h *hosts.Host, u ServiceUpdate) (*ComputeService, error) {
	if u.DisabledReason != nil && (u.Enabled == nil || *u.Enabled) {
		return nil, fault.Invalidf("Specifying 'disabled_reason' with status 'enabled' is invalid.")
	}
	if u.Enabled != nil {
		reason := ""
		if u.DisabledReason != nil {
			reason = *u.DisabledReason
		}
		if err := s.hosts.SetDisabled(ctx, h.ID, !*u.Enabled, reason); err != nil {
			return nil, err
		}
	}
	if u.ForcedDown != nil {
		if err := s.hosts.SetForcedDown(ctx, h.ID, *u.ForcedDown); err != nil {
			return nil, err
		}
	}
	s.sched.Invalidate()
	nh, n, err := s.resolveHost(ctx, h.ID, errServiceNotFound(h.ID))
	if err != nil {
		return nil, err
	}
	aggs, err := s.st.listAggregates(ctx)
	if err != nil {
		return nil, err
	}
	cs := s.serviceOf(*nh, n, aggs)
	return &cs, nil
}

// DeleteComputeService removes a host that runs no instances from the
// cloud (its agent must join again). Kinds: Forbidden, NotFound, Conflict.
func (s *Service) DeleteComputeService(ctx context.Context, id string) error {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-services:delete"); err != nil {
		return err
	}
	h, _, err := s.resolveHost(ctx, id, errServiceNotFound(id))
	if err != nil {
		return err
	}
	live, err := s.st.listServers(ctx, serverQuery{hostID: h.ID})
	if err != nil {
		return err
	}
	if len(live) > 0 {
		return fault.Conflictf("Unable to delete compute service that is hosting instances. Migrate or delete the instances first.")
	}
	if err := s.hosts.Delete(ctx, h.ID); err != nil {
		return err
	}
	s.sched.Invalidate()
	return nil
}

// ListHypervisors returns every host as a hypervisor, those whose hostname
// matches pattern (a shell glob, or a substring) when it is set. Kinds:
// Forbidden.
func (s *Service) ListHypervisors(ctx context.Context, pattern string) ([]Hypervisor, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-hypervisors:list"); err != nil {
		return nil, err
	}
	return s.hypervisors(ctx, pattern)
}

func (s *Service) hypervisors(ctx context.Context, pattern string) ([]Hypervisor, error) {
	hs, nums, err := s.hostList(ctx)
	if err != nil {
		return nil, err
	}
	usage, err := s.sched.Usage(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.st.runningVMs(ctx)
	if err != nil {
		return nil, err
	}
	out := []Hypervisor{}
	for _, h := range hs {
		if pattern != "" {
			ok, _ := path.Match(pattern, h.Hostname)
			if !ok && !containsFold(h.Hostname, pattern) {
				continue
			}
		}
		inv := h.Inventory
		out = append(out, Hypervisor{
			ID: h.ID, Num: nums[h.ID], Hostname: h.Hostname, Up: h.Up(s.cfg.Now(), s.hosts.DownAfter()),
			Enabled: !h.Disabled, DisabledReason: h.DisabledReason, Type: inv.HypervisorType, Version: inv.HypervisorVersion,
			HostIP: inv.HostIP, CPUInfo: inv.CPUInfo, VCPUs: int64(inv.VCPUs), MemoryMB: inv.MemoryMB, LocalGB: inv.DiskGB,
			Used: usage[h.ID], RunningVMs: counts[h.ID], CreatedAt: h.CreatedAt, LastHeartbeat: h.LastHeartbeat,
			ServiceID: h.ID, ServiceNum: nums[h.ID],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out, nil
}

func containsFold(s, sub string) bool {
	return len(sub) <= len(s) && (sub == "" || indexFold(s, sub) >= 0)
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// GetHypervisor returns hypervisor id (UUID or integer). Kinds: Forbidden,
// NotFound.
func (s *Service) GetHypervisor(ctx context.Context, id string) (*Hypervisor, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-hypervisors:show"); err != nil {
		return nil, err
	}
	hs, err := s.hypervisors(ctx, "")
	if err != nil {
		return nil, err
	}
	n, nerr := strconv.ParseInt(id, 10, 64)
	for i := range hs {
		if hs[i].ID == id || (nerr == nil && hs[i].Num == n) {
			return &hs[i], nil
		}
	}
	return nil, fault.NotFoundf("Hypervisor %s could not be found.", id)
}

// HypervisorServers returns the live servers on hypervisor id. Kinds:
// Forbidden, NotFound.
func (s *Service) HypervisorServers(ctx context.Context, id string) ([]Server, error) {
	h, err := s.GetHypervisor(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.st.listServers(ctx, serverQuery{hostID: h.ID})
}

// HypervisorStats sums every hypervisor.
type HypervisorStats struct {
	Count      int
	VCPUs      int64
	MemoryMB   int64
	LocalGB    int64
	Used       scheduler.Resources
	RunningVMs int
}

// HypervisorStatistics sums the hypervisors. Kinds: Forbidden.
func (s *Service) HypervisorStatistics(ctx context.Context) (*HypervisorStats, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-hypervisors:statistics"); err != nil {
		return nil, err
	}
	hs, err := s.hypervisors(ctx, "")
	if err != nil {
		return nil, err
	}
	st := &HypervisorStats{Count: len(hs)}
	for _, h := range hs {
		st.VCPUs += h.VCPUs
		st.MemoryMB += h.MemoryMB
		st.LocalGB += h.LocalGB
		st.Used = st.Used.Add(h.Used.Resources)
		st.RunningVMs += h.RunningVMs
	}
	return st, nil
}

func (st *store) runningVMs(ctx context.Context) (map[string]int, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT host_id, COUNT(*) FROM instances WHERE deleted = 0 AND host_id IS NOT NULL GROUP BY host_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// Zone is an availability zone.
type Zone struct {
	Name      string
	Available bool
	// Hosts are set only in the detailed listing.
	Hosts []ComputeService
}

// AvailabilityZones lists the zones that have hosts (and the default zone
// always); detail adds each zone's hosts and needs admin. A zone is
// available when one of its hosts is up and enabled. Kinds: Forbidden.
func (s *Service) AvailabilityZones(ctx context.Context, detail bool) ([]Zone, error) {
	action := "os_compute_api:os-availability-zone:list"
	if detail {
		action = "os_compute_api:os-availability-zone:detail"
	}
	if err := s.authorizeAdmin(ctx, action); err != nil {
		return nil, err
	}
	zs, err := s.zones(ctx)
	if err != nil {
		return nil, err
	}
	svcs := map[string]ComputeService{}
	if s.hosts != nil {
		hs, nums, err := s.hostList(ctx)
		if err != nil {
			return nil, err
		}
		aggs, err := s.st.listAggregates(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			svcs[h.Hostname] = s.serviceOf(h, nums[h.ID], aggs)
		}
	}
	names := make([]string, 0, len(zs))
	for n := range zs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Zone
	for _, n := range names {
		z := Zone{Name: n}
		for _, h := range zs[n] {
			cs, ok := svcs[h]
			if !ok {
				continue
			}
			if cs.Up && cs.Enabled {
				z.Available = true
			}
			if detail {
				z.Hosts = append(z.Hosts, cs)
			}
		}
		if len(zs[n]) == 0 && n != DefaultAvailabilityZone {
			continue // a zone of empty aggregates is not listed, as Nova
		}
		out = append(out, z)
	}
	return out, nil
}

// HostStatuses maps every host ID to Nova's host_status: UP, DOWN (silent
// or forced down) or MAINTENANCE (disabled). A registry that cannot be read
// makes every status UNKNOWN (an absent key).
func (s *Service) HostStatuses(ctx context.Context) map[string]string {
	out := map[string]string{}
	if s.hosts == nil {
		return out
	}
	hs, err := s.hosts.List(ctx)
	if err != nil {
		s.log.Warn("read hosts for host_status", "err", err)
		return out
	}
	now := s.cfg.Now()
	for _, h := range hs {
		switch {
		case !h.Up(now, s.hosts.DownAfter()):
			out[h.ID] = "DOWN"
		case h.Disabled:
			out[h.ID] = "MAINTENANCE"
		default:
			out[h.ID] = "UP"
		}
	}
	return out
}
