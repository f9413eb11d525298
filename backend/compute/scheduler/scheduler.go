// Package scheduler places instances on hypervisor hosts the way Nova's
// filter scheduler does: filters drop hosts that cannot take the instance,
// weighers order the rest, and the best host is claimed. Claims are
// placement-style allocations made atomic in the database: one transaction
// re-reads the host's usage and inserts the allocation only if it still
// fits, so concurrent boots (from one controller or several) can never
// oversubscribe a host beyond its allocation ratios.
//
// The scheduler caches the host list and per-host usage for speed and
// treats the cache as a hint only: the claim transaction is the truth, and
// a claim that no longer fits refreshes that host and moves on to the next.
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// Defaults for Config's zero values, as Nova's.
const (
	DefaultCPUAllocationRatio  = 16.0
	DefaultRAMAllocationRatio  = 1.5
	DefaultDiskAllocationRatio = 1.0
	DefaultRefreshInterval     = time.Second
)

// Config tunes the scheduler. Zero values take the defaults.
type Config struct {
	// Allocation ratios: how far each resource may be overcommitted.
	CPUAllocationRatio  float64
	RAMAllocationRatio  float64
	DiskAllocationRatio float64
	// ReservedHostMemoryMB and ReservedHostDiskGB are kept back for the host.
	ReservedHostMemoryMB int64
	ReservedHostDiskGB   int64
	// Pack fills hosts one by one (negative RAM and CPU weight multipliers)
	// instead of spreading instances across them.
	Pack bool
	// Weigher multipliers; zero means 1.0, a negative value reverses the
	// weigher. Pack negates the RAM and CPU ones.
	RAMWeightMultiplier              float64
	CPUWeightMultiplier              float64
	SoftAffinityWeightMultiplier     float64
	SoftAntiAffinityWeightMultiplier float64
	// RefreshInterval is how long the cached host list and usage are
	// trusted before they are reloaded: one second when zero.
	RefreshInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	or := func(v, d float64) float64 {
		if v == 0 {
			return d
		}
		return v
	}
	c.CPUAllocationRatio = or(c.CPUAllocationRatio, DefaultCPUAllocationRatio)
	c.RAMAllocationRatio = or(c.RAMAllocationRatio, DefaultRAMAllocationRatio)
	c.DiskAllocationRatio = or(c.DiskAllocationRatio, DefaultDiskAllocationRatio)
	c.RAMWeightMultiplier = or(c.RAMWeightMultiplier, 1)
	c.CPUWeightMultiplier = or(c.CPUWeightMultiplier, 1)
	c.SoftAffinityWeightMultiplier = or(c.SoftAffinityWeightMultiplier, 1)
	c.SoftAntiAffinityWeightMultiplier = or(c.SoftAntiAffinityWeightMultiplier, 1)
	if c.Pack {
		c.RAMWeightMultiplier = -abs(c.RAMWeightMultiplier)
		c.CPUWeightMultiplier = -abs(c.CPUWeightMultiplier)
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// Resources are an amount of the three scheduled resources.
type Resources struct {
	VCPUs    int64
	MemoryMB int64
	DiskGB   int64
}

// Add returns r+o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.VCPUs + o.VCPUs, r.MemoryMB + o.MemoryMB, r.DiskGB + o.DiskGB}
}

// Sub returns r-o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.VCPUs - o.VCPUs, r.MemoryMB - o.MemoryMB, r.DiskGB - o.DiskGB}
}

// Aggregate is what the filters need of a host aggregate.
type Aggregate struct {
	Name     string
	Metadata map[string]string
}

// Host is a hypervisor host as the scheduler sees it.
type Host struct {
	ID       string
	Hostname string
	// Up is false for hosts silent past the service-down time or forced
	// down; Enabled is false for hosts an operator disabled.
	Up      bool
	Enabled bool
	// Capacity is the host's inventory before allocation ratios.
	Capacity         Resources
	HypervisorType   string // "QEMU"
	VirtType         string // "kvm" or "qemu"
	Arch             string // "x86_64"
	AvailabilityZone string
	Aggregates       []Aggregate
}

// Usage is what is allocated on a host.
type Usage struct {
	Resources
	// Instances counts distinct instances holding allocations.
	Instances int
}

// HostSource lists the hosts to schedule on. Compute implements it over the
// hosts registry and its aggregates.
type HostSource interface {
	Hosts(ctx context.Context) ([]Host, error)
}

// Server-group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// Group is the server group an instance boots into.
type Group struct {
	// ID, when set, makes the claim re-check a hard policy against the
	// group's members in the database (server_group_members).
	ID     string
	Policy string
	// Members counts the group's instances on each host ID.
	Members map[string]int
	// MaxServerPerHost is anti-affinity's max_server_per_host rule; 0 is 1.
	MaxServerPerHost int
}

// Request asks for one instance's placement.
type Request struct {
	// ConsumerID names the allocation; InstanceUUID is the instance it
	// belongs to (the same for a boot).
	ConsumerID   string
	InstanceUUID string
	ProjectID    string
	Resources    Resources
	// AvailabilityZone, when set, restricts to hosts in that zone.
	AvailabilityZone string
	// ImageProperties are the image's properties (hypervisor_type,
	// architecture, and their img_/hw_ spellings).
	ImageProperties map[string]string
	// SameHost and DifferentHost are host IDs from the same_host and
	// different_host hints.
	SameHost      []string
	DifferentHost []string
	Group         *Group
	// OnlyHosts, when set, restricts to these host IDs (a forced host).
	OnlyHosts []string
}

// NoValidHostError is the scheduler's answer when no host can take the
// request. Its message is Nova's.
type NoValidHostError struct {
	Reason string
}

func (e *NoValidHostError) Error() string { return "No valid host was found. " + e.Reason }

// ErrNoValidHost matches every *NoValidHostError with errors.Is.
var ErrNoValidHost = errors.New("no valid host")

// Is makes errors.Is(err, ErrNoValidHost) true.
func (e *NoValidHostError) Is(target error) bool { return target == ErrNoValidHost }

// Scheduler places instances. It is safe for concurrent use.
type Scheduler struct {
	cfg Config
	st  *store
	src HostSource

	mu       sync.Mutex
	hosts    []Host
	hostsAt  time.Time
	usage    map[string]Usage
	usageAt  time.Time
	filters  []Filter
	weighers []Weigher
}

// New returns a scheduler claiming in d's allocations table over the hosts
// src lists.
func New(d *db.DB, cfg Config, src HostSource) *Scheduler {
	cfg = cfg.withDefaults()
	return &Scheduler{
		cfg: cfg, st: &store{db: d}, src: src,
		filters:  DefaultFilters(),
		weighers: DefaultWeighers(cfg),
	}
}

// Config returns the effective configuration.
func (s *Scheduler) Config() Config { return s.cfg }

// Limit is what a host may hold in total: (capacity - reserved) × ratio.
func (s *Scheduler) Limit(h Host) Resources { return s.limit(&h) }

func (s *Scheduler) limit(h *Host) Resources {
	return Resources{
		VCPUs:    int64(float64(h.Capacity.VCPUs) * s.cfg.CPUAllocationRatio),
		MemoryMB: int64(float64(h.Capacity.MemoryMB-s.cfg.ReservedHostMemoryMB) * s.cfg.RAMAllocationRatio),
		DiskGB:   int64(float64(h.Capacity.DiskGB-s.cfg.ReservedHostDiskGB) * s.cfg.DiskAllocationRatio),
	}
}

// Invalidate drops the cached hosts and usage, so the next placement reads
// them afresh (after a host is disabled or an aggregate changes).
func (s *Scheduler) Invalidate() {
	s.mu.Lock()
	s.hostsAt, s.usageAt = time.Time{}, time.Time{}
	s.mu.Unlock()
}

// refresh reloads what is older than the refresh interval (or everything
// when force is set). s.mu must be held.
func (s *Scheduler) refresh(ctx context.Context, force bool) error {
	now := s.cfg.Now()
	if force || s.hosts == nil || now.Sub(s.hostsAt) > s.cfg.RefreshInterval {
		hs, err := s.src.Hosts(ctx)
		if err != nil {
			return fmt.Errorf("list hosts: %w", err)
		}
		// The slice is replaced, never changed in place, so candidates
		// that point into it stay valid after the lock is released.
		s.hosts, s.hostsAt = hs, now
	}
	if force || s.usage == nil || now.Sub(s.usageAt) > s.cfg.RefreshInterval {
		u, err := s.st.usage(ctx)
		if err != nil {
			return err
		}
		s.usage, s.usageAt = u, now
	}
	return nil
}

// noteUsage records a host's usage as a claim transaction saw it (plus
// delta when the claim succeeded).
func (s *Scheduler) noteUsage(hostID string, u Usage) {
	s.mu.Lock()
	if s.usage != nil {
		s.usage[hostID] = u
	}
	s.mu.Unlock()
}

// Forget subtracts released allocations from the cached usage.
func (s *Scheduler) Forget(allocs []Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usage == nil {
		return
	}
	for _, a := range allocs {
		u := s.usage[a.HostID]
		u.Resources = u.Resources.Sub(a.Resources)
		if a.InstanceUUID != "" && a.ConsumerID == a.InstanceUUID && u.Instances > 0 {
			u.Instances--
		}
		s.usage[a.HostID] = u
	}
}

// Candidate is a host that passed every filter, with its weight.
type Candidate struct {
	Host   *Host
	Usage  Usage
	Weight float64
}

// Candidates returns the hosts that pass every filter for req, best first.
func (s *Scheduler) Candidates(hosts []Host, usage map[string]Usage, req Request) []Candidate {
	out := make([]Candidate, 0, len(hosts))
	for i := range hosts {
		h := &hosts[i]
		st := HostState{Host: h, Usage: usage[h.ID], Limit: s.limit(h)}
		pass := true
		for _, f := range s.filters {
			if !f.Pass(&st, &req) {
				pass = false
				break
			}
		}
		if pass {
			out = append(out, Candidate{Host: h, Usage: st.Usage})
		}
	}
	if len(out) > 1 {
		weigh(s.weighers, out, s, &req)
		slices.SortStableFunc(out, func(a, b Candidate) int { return cmp.Compare(b.Weight, a.Weight) })
	}
	return out
}

// Schedule filters and weighs the hosts for req and claims the best one
// that still fits, returning it. When none does it returns a
// *NoValidHostError.
func (s *Scheduler) Schedule(ctx context.Context, req Request) (*Host, error) {
	if req.ConsumerID == "" {
		req.ConsumerID = req.InstanceUUID
	}
	for attempt := 0; attempt < 2; attempt++ {
		// A second attempt reloads everything: a stale cache may have hidden
		// capacity that releases elsewhere freed.
		s.mu.Lock()
		if err := s.refresh(ctx, attempt > 0); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		cands := s.Candidates(s.hosts, s.usage, req)
		s.mu.Unlock()
		for _, c := range cands {
			ok, err := s.claim(ctx, *c.Host, req.ConsumerID, req.InstanceUUID, req.Resources, req.Group)
			if err != nil {
				return nil, err
			}
			if ok {
				h := *c.Host
				return &h, nil
			}
		}
	}
	return nil, &NoValidHostError{Reason: "There are not enough hosts available."}
}

// Claim allocates res on host for consumer (of instance) if it still fits
// there, and reports whether it did. A consumer that already holds an
// allocation is a fault.Conflict.
func (s *Scheduler) Claim(ctx context.Context, host Host, consumerID, instanceUUID string, res Resources) (bool, error) {
	return s.claim(ctx, host, consumerID, instanceUUID, res, nil)
}

func (s *Scheduler) claim(ctx context.Context, host Host, consumerID, instanceUUID string, res Resources, g *Group) (bool, error) {
	a := Allocation{ConsumerID: consumerID, InstanceUUID: instanceUUID, HostID: host.ID, Resources: res}
	u, ok, err := s.st.claim(ctx, a, s.Limit(host), g, s.cfg.Now())
	if err != nil {
		return false, err
	}
	s.noteUsage(host.ID, u)
	return ok, nil
}

// ClaimResize moves instanceUUID's allocation on host to the consumer
// OldConsumer(instanceUUID) and claims res for the instance beside it, if
// both fit on the host together (a resize in place holds both until it is
// confirmed or reverted). It reports whether the claim fit.
func (s *Scheduler) ClaimResize(ctx context.Context, host Host, instanceUUID string, res Resources) (bool, error) {
	u, ok, err := s.st.claimResize(ctx, host.ID, instanceUUID, res, s.Limit(host), s.cfg.Now())
	if err != nil {
		return false, err
	}
	s.noteUsage(host.ID, u)
	return ok, nil
}

// ConfirmResize releases the old flavor's allocation of instanceUUID.
func (s *Scheduler) ConfirmResize(ctx context.Context, instanceUUID string) error {
	freed, err := s.st.releaseConsumer(ctx, OldConsumer(instanceUUID))
	if err == nil {
		s.Forget(freed)
	}
	return err
}

// RevertResize drops the new flavor's allocation of instanceUUID and gives
// the instance back its old one.
func (s *Scheduler) RevertResize(ctx context.Context, instanceUUID string) error {
	freed, err := s.st.revertResize(ctx, instanceUUID)
	if err == nil {
		s.Forget(freed)
	}
	return err
}

// Release frees every allocation of instanceUUID.
func (s *Scheduler) Release(ctx context.Context, instanceUUID string) error {
	freed, err := s.st.release(ctx, instanceUUID)
	if err == nil {
		s.Forget(freed)
	}
	return err
}

// Usage returns the allocated resources per host ID, read from the database.
func (s *Scheduler) Usage(ctx context.Context) (map[string]Usage, error) {
	return s.st.usage(ctx)
}

// Allocations returns every allocation, for checks and the admin views.
func (s *Scheduler) Allocations(ctx context.Context) ([]Allocation, error) {
	return s.st.allocations(ctx)
}

// OldConsumer is the consumer that holds an instance's old flavor during a
// resize.
func OldConsumer(instanceUUID string) string { return instanceUUID + "/old" }
