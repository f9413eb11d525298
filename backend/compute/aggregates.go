package compute

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// azKey is the aggregate metadata key naming its availability zone.
const azKey = "availability_zone"

// Aggregate is a host aggregate: a named set of hosts with metadata, whose
// availability_zone key makes it an availability zone.
type Aggregate struct {
	ID        int64
	UUID      string
	Name      string
	Hosts     []string // hostnames
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt *time.Time
}

// AvailabilityZone is the aggregate's zone, or "".
func (a *Aggregate) AvailabilityZone() string { return a.Metadata[azKey] }

func (s *Service) authorizeAdmin(ctx context.Context, action string) error {
	_, err := s.authorize(ctx, action, policy.Target{})
	return err
}

func checkAggregateName(name string) error {
	if len(strings.TrimSpace(name)) == 0 || len(name) > 255 {
		return fault.Invalidf("Invalid input for field/attribute name. An aggregate name must be 1 to 255 characters.")
	}
	return nil
}

// CreateAggregate creates an aggregate, in zone az when it is not "".
// Kinds: Forbidden, Invalid, Conflict (name taken).
func (s *Service) CreateAggregate(ctx context.Context, name, az string) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:create"); err != nil {
		return nil, err
	}
	if err := checkAggregateName(name); err != nil {
		return nil, err
	}
	a := &Aggregate{UUID: newUUID(), Name: name, Metadata: map[string]string{}, CreatedAt: s.now()}
	if az != "" {
		a.Metadata[azKey] = az
	}
	if err := s.st.createAggregate(ctx, a); err != nil {
		return nil, err
	}
	s.sched.Invalidate()
	return a, nil
}

// ListAggregates returns every aggregate. Kinds: Forbidden.
func (s *Service) ListAggregates(ctx context.Context) ([]Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:index"); err != nil {
		return nil, err
	}
	return s.st.listAggregates(ctx)
}

// GetAggregate returns aggregate id. Kinds: Forbidden, NotFound.
func (s *Service) GetAggregate(ctx context.Context, id int64) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:show"); err != nil {
		return nil, err
	}
	return s.st.getAggregate(ctx, s.st.db, id)
}

// UpdateAggregate renames aggregate id or moves it to zone az (nil leaves
// a field, an empty az removes the zone). Kinds: Forbidden, NotFound,
// Invalid, Conflict.
func (s *Service) UpdateAggregate(ctx context.Context, id int64, name, az *string) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:update"); err != nil {
		return nil, err
	}
	if name != nil {
		if err := checkAggregateName(*name); err != nil {
			return nil, err
		}
	}
	var md map[string]*string
	if az != nil {
		v := az
		if *az == "" {
			v = nil
		}
		md = map[string]*string{azKey: v}
	}
	if err := s.st.updateAggregate(ctx, id, name, md, s.now()); err != nil {
		return nil, err
	}
	s.sched.Invalidate()
	return s.st.getAggregate(ctx, s.st.db, id)
}

// DeleteAggregate deletes aggregate id, which must hold no hosts. Kinds:
// Forbidden, NotFound, Invalid.
func (s *Service) DeleteAggregate(ctx context.Context, id int64) error {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:delete"); err != nil {
		return err
	}
	if err := s.st.deleteAggregate(ctx, id); err != nil {
		return err
	}
	s.sched.Invalidate()
	return nil
}

// AddAggregateHost adds host (a hostname) to aggregate id. A host may be in
// only one availability zone. Kinds: Forbidden, NotFound, Conflict, Invalid.
func (s *Service) AddAggregateHost(ctx context.Context, id int64, host string) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:add_host"); err != nil {
		return nil, err
	}
	if s.hosts == nil {
		return nil, fault.NotFoundf("Compute host %s could not be found.", host)
	}
	if _, err := s.hosts.GetByHostname(ctx, host); err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, fault.NotFoundf("Compute host %s could not be found.", host)
		}
		return nil, err
	}
	if err := s.st.addAggregateHost(ctx, id, host, s.now()); err != nil {
		return nil, err
	}
	s.sched.Invalidate()
	return s.st.getAggregate(ctx, s.st.db, id)
}

// RemoveAggregateHost removes host from aggregate id. Kinds: Forbidden,
// NotFound.
func (s *Service) RemoveAggregateHost(ctx context.Context, id int64, host string) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:remove_host"); err != nil {
		return nil, err
	}
	if err := s.st.removeAggregateHost(ctx, id, host, s.now()); err != nil {
		return nil, err
	}
	s.sched.Invalidate()
	return s.st.getAggregate(ctx, s.st.db, id)
}

// SetAggregateMetadata sets aggregate id's metadata; a nil value deletes
// the key. Kinds: Forbidden, NotFound, Invalid.
func (s *Service) SetAggregateMetadata(ctx context.Context, id int64, md map[string]*string) (*Aggregate, error) {
	if err := s.authorizeAdmin(ctx, "os_compute_api:os-aggregates:set_metadata"); err != nil {
		return nil, err
	}
	for k, v := range md {
		if len(k) == 0 || len(k) > 255 || (v != nil && len(*v) > 255) {
			return nil, fault.Invalidf("Invalid input for field/attribute metadata. Keys and values must be 1 to 255 characters.")
		}
	}
	if err := s.st.updateAggregate(ctx, id, nil, md, s.now()); err != nil {
		return nil, err
	}
	s.sched.Invalidate()
	return s.st.getAggregate(ctx, s.st.db, id)
}

// zones maps every availability zone to its hostnames (sorted). Hosts in no
// zoned aggregate are in the default zone, which always exists.
func (s *Service) zones(ctx context.Context) (map[string][]string, error) {
	aggs, err := s.st.listAggregates(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{DefaultAvailabilityZone: nil}
	zoned := map[string]bool{}
	for _, a := range aggs {
		if z := a.AvailabilityZone(); z != "" {
			if _, ok := out[z]; !ok {
				out[z] = nil
			}
			for _, h := range a.Hosts {
				if !slices.Contains(out[z], h) {
					out[z] = append(out[z], h)
				}
				zoned[h] = true
			}
		}
	}
	if s.hosts != nil {
		hs, err := s.hosts.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			if !zoned[h.Hostname] {
				out[DefaultAvailabilityZone] = append(out[DefaultAvailabilityZone], h.Hostname)
			}
		}
	}
	for z := range out {
		sort.Strings(out[z])
	}
	return out, nil
}

// zoneOfHost returns the zone of hostname given the aggregates.
func zoneOfHost(aggs []Aggregate, hostname string) string {
	for _, a := range aggs {
		if z := a.AvailabilityZone(); z != "" && slices.Contains(a.Hosts, hostname) {
			return z
		}
	}
	return DefaultAvailabilityZone
}

func errAggregateNotFound(id int64) error {
	return fault.NotFoundf("Aggregate %d could not be found.", id)
}

func aggregateHostConflict(id int64, host string) error {
	return fault.Conflictf("Aggregate %d already has host %s.", id, host)
}

func aggregateZoneConflict(id int64, zones []string) error {
	return fault.Invalidf("Cannot add host to aggregate %d. Reason: One or more hosts already in availability zone(s) %s.",
		id, fmt.Sprint(zones))
}
