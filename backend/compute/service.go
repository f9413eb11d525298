// Package compute is Nimbus's compute service, compatible with Nova's v2.1
// API: flavors, key pairs, servers and their actions, the instance action
// log, quotas, availability zones, aggregates, server groups, and the
// admin views of hosts (os-services, os-hypervisors). Instances follow
// Nova's state model (vm_state, task_state, power_state); the scheduler
// (package scheduler) places them with claims that are atomic in the
// database, and the hosts registry's node agents run them. Agents report
// back through the hosts.Listener this service implements.
//
// Every exported method that acts for a caller reads the caller's
// credentials from the context (auth.FromContext) and checks its action
// through the policy engine, so the REST API and the dashboard enforce the
// same rules. Errors are *fault.Error values; each method's doc names the
// kinds it returns. Another project's object answers NotFound, exactly like
// a missing one.
package compute

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/compute/scheduler"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// DefaultAvailabilityZone is the zone of hosts in no zoned aggregate, as
// Nova's default_availability_zone.
const DefaultAvailabilityZone = "nova"

// Config configures the compute service. Zero values take the defaults.
type Config struct {
	// Policy is the engine with compute's PolicyRules registered; when nil
	// the service builds one from PolicyRules.
	Policy *policy.Engine
	// Hosts is the registry of hypervisor hosts and the client to their
	// agents. When nil no host exists: every boot ends in ERROR with "No
	// valid host was found".
	Hosts *hosts.Registry
	// Tokens validates X-Auth-Token for the REST API (the identity
	// service); NewAPI requires it.
	Tokens auth.Validator
	// IdentityURL is the identity API's public URL for the WWW-Authenticate
	// header of a 401; derived from the request when empty.
	IdentityURL string
	// Images answers image lookups and creates snapshot images; when nil
	// every imageRef is unknown.
	Images ImageGetter
	// Networks creates, binds and releases instances' ports (the network
	// service). When nil networking is unavailable: "auto" attaches nothing
	// and explicit networks are refused.
	Networks NetworkPorts
	// Now is the clock, time.Now when nil.
	Now func() time.Time
	// PublicURL is the cloud's public base URL (http://host:port), used in
	// console URLs.
	PublicURL string
	// ConsoleURL is the noVNC page console URLs point at; when empty,
	// PublicURL + "/console/vnc_lite.html".
	ConsoleURL string
	// ConsoleTokenTTL is how long a console token may wait for its
	// connection: 10 minutes when zero.
	ConsoleTokenTTL time.Duration
	// BuildTimeout turns builds still unfinished after it into ERROR: the
	// agent operation timeout (10 minutes) when zero.
	BuildTimeout time.Duration
	// OpTimeout bounds other agent operations, after which the task is
	// abandoned: the agent operation timeout when zero.
	OpTimeout time.Duration
	// ReconcileInterval is how often stuck builds and operations are swept:
	// 30 s when zero, never when negative.
	ReconcileInterval time.Duration
	// Quotas are the default limits of every project; zero fields take
	// Nova's defaults.
	Quotas QuotaLimits
	// Scheduler tunes placement: allocation ratios and weigher multipliers.
	Scheduler scheduler.Config
	// Logger receives warnings; nil is slog.Default().
	Logger *slog.Logger
	// Events, when set, hears of every change of an instance's states and
	// of the end of every action on one (see changed); nil publishes none.
	Events events.Publisher
}

// Service is the compute service. It is safe for concurrent use. Builds,
// deletions and actions continue in the background after the API call that
// started them returns; Close waits for them.
type Service struct {
	db    *db.DB
	st    *store
	cfg   Config
	pol   *policy.Engine
	hosts *hosts.Registry
	sched *scheduler.Scheduler
	log   *slog.Logger

	ctx    context.Context // background work; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// waits hands agents' reports to API calls that wait for them.
	waits opWaits
}

// The hosts registry forwards agents' reports to the service.
var _ hosts.Listener = (*Service)(nil)

// New returns the compute service over d, whose migrations must have been
// applied, subscribes it to cfg.Hosts (wiring must not subscribe it again)
// and starts its reconciler, which lives until Close.
func New(ctx context.Context, d *db.DB, cfg Config) (*Service, error) {
	if d == nil {
		return nil, fault.New(fault.Internal, "compute: no database")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New(PolicyRules())
	}
	if cfg.ConsoleTokenTTL <= 0 {
		cfg.ConsoleTokenTTL = 10 * time.Minute
	}
	if cfg.BuildTimeout <= 0 {
		cfg.BuildTimeout = agentapi.DefaultOpTimeout
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = agentapi.DefaultOpTimeout
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = 30 * time.Second
	}
	cfg.Quotas = cfg.Quotas.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConsoleURL == "" {
		cfg.ConsoleURL = trimSlash(cfg.PublicURL) + "/console/vnc_lite.html"
	}
	st := &store{db: d}
	if err := st.ping(ctx); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "compute: database not ready")
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{
		db: d, st: st, cfg: cfg, pol: cfg.Policy, hosts: cfg.Hosts, log: cfg.Logger,
		ctx: bg, cancel: cancel,
	}
	s.sched = scheduler.New(d, cfg.Scheduler, &hostSource{s: s})
	if s.hosts != nil {
		s.hosts.Subscribe(s)
	}
	if cfg.ReconcileInterval > 0 {
		s.wg.Add(1)
		go s.reconcileLoop()
	}
	return s, nil
}

// Close stops the reconciler and waits for background work to finish.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Scheduler returns the service's scheduler, for benchmarks and tests.
func (s *Service) Scheduler() *scheduler.Scheduler { return s.sched }

// now is the service clock.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// goBackground runs fn in the background under the service's lifetime
// (Close cancels it), with the values of from: the request ID that started
// the work follows it to the agent, as DESIGN §9 asks.
func (s *Service) goBackground(from context.Context, fn func(ctx context.Context)) {
	ctx := s.ctx
	if from != nil {
		ctx = valuesFrom{Context: s.ctx, values: from}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(ctx)
	}()
}

// valuesFrom is a context with one context's lifetime and another's values.
type valuesFrom struct {
	context.Context
	values context.Context
}

func (v valuesFrom) Value(key any) any { return v.values.Value(key) }

// authorize checks that the caller in ctx may perform action on t.
func (s *Service) authorize(ctx context.Context, action string, t policy.Target) (*auth.Credentials, error) {
	return s.pol.Authorize(ctx, action, t)
}

// allowed reports whether the caller in ctx may perform action on t, for
// optional parts of a view (admin-only attributes).
func (s *Service) allowed(ctx context.Context, action string, t policy.Target) bool {
	c, ok := auth.FromContext(ctx)
	return ok && s.pol.Allowed(action, c, t)
}

// projectTarget is the policy target of an object owned by project (and user).
func projectTarget(projectID, userID string) policy.Target {
	t := policy.Target{"project_id": projectID}
	if userID != "" {
		t["user_id"] = userID
	}
	return t
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// callerOrNil returns the credentials in ctx, if any; background work has none.
func callerOrNil(ctx context.Context) (*auth.Credentials, bool) { return auth.FromContext(ctx) }
