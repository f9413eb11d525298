package scheduler

// Weigher scores a host for a request; higher is better. As in Nova, each
// weigher's raw scores are normalised to [0, 1] across the candidates and
// multiplied by its multiplier before they are summed.
type Weigher interface {
	Name() string
	Multiplier() float64
	Weigh(h *HostState, r *Request) float64
}

// DefaultWeighers returns the RAM, CPU and server-group soft (anti-)affinity
// weighers with cfg's multipliers.
func DefaultWeighers(cfg Config) []Weigher {
	cfg = cfg.withDefaults()
	return []Weigher{
		ramWeigher{cfg.RAMWeightMultiplier},
		cpuWeigher{cfg.CPUWeightMultiplier},
		softAffinityWeigher{cfg.SoftAffinityWeightMultiplier},
		softAntiAffinityWeigher{cfg.SoftAntiAffinityWeightMultiplier},
	}
}

// ramWeigher prefers the host with the most free RAM (spread); a negative
// multiplier prefers the least (pack).
type ramWeigher struct{ m float64 }

func (ramWeigher) Name() string          { return "RAMWeigher" }
func (w ramWeigher) Multiplier() float64 { return w.m }
func (ramWeigher) Weigh(h *HostState, _ *Request) float64 {
	return float64(h.Free().MemoryMB)
}

// cpuWeigher prefers the host with the most free vCPUs.
type cpuWeigher struct{ m float64 }

func (cpuWeigher) Name() string          { return "CPUWeigher" }
func (w cpuWeigher) Multiplier() float64 { return w.m }
func (cpuWeigher) Weigh(h *HostState, _ *Request) float64 {
	return float64(h.Free().VCPUs)
}

// softAffinityWeigher prefers hosts with more members of a soft-affinity group.
type softAffinityWeigher struct{ m float64 }

func (softAffinityWeigher) Name() string          { return "ServerGroupSoftAffinityWeigher" }
func (w softAffinityWeigher) Multiplier() float64 { return w.m }
func (softAffinityWeigher) Weigh(h *HostState, r *Request) float64 {
	if r.Group == nil || r.Group.Policy != PolicySoftAffinity {
		return 0
	}
	return float64(r.Group.Members[h.Host.ID])
}

// softAntiAffinityWeigher prefers hosts with fewer members of a
// soft-anti-affinity group.
type softAntiAffinityWeigher struct{ m float64 }

func (softAntiAffinityWeigher) Name() string          { return "ServerGroupSoftAntiAffinityWeigher" }
func (w softAntiAffinityWeigher) Multiplier() float64 { return w.m }
func (softAntiAffinityWeigher) Weigh(h *HostState, r *Request) float64 {
	if r.Group == nil || r.Group.Policy != PolicySoftAntiAffinity {
		return 0
	}
	return -float64(r.Group.Members[h.Host.ID])
}

// weigh sets each candidate's weight: the sum over weighers of the
// normalised raw score times the multiplier.
func weigh(ws []Weigher, cs []Candidate, s *Scheduler, r *Request) {
	raw := make([]float64, len(cs))
	sts := make([]HostState, len(cs))
	for i := range cs {
		sts[i] = HostState{Host: cs[i].Host, Usage: cs[i].Usage, Limit: s.limit(cs[i].Host)}
	}
	for _, w := range ws {
		lo, hi := 0.0, 0.0
		for i := range cs {
			raw[i] = w.Weigh(&sts[i], r)
			if i == 0 || raw[i] < lo {
				lo = raw[i]
			}
			if i == 0 || raw[i] > hi {
				hi = raw[i]
			}
		}
		if hi == lo {
			continue // every host scores the same: this weigher decides nothing
		}
		m := w.Multiplier()
		for i := range cs {
			cs[i].Weight += m * (raw[i] - lo) / (hi - lo)
		}
	}
}
