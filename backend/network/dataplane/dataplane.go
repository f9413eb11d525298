// Package dataplane drives the hosts' network data planes (DESIGN §5) from
// the network service: it is the service's Notifier, turns NetworkPlan,
// RouterPlan and PortPlan into the agents' NetworkSpec, RouterSpec and
// PortSecuritySpec, and pushes them through the hosts registry's signed
// clients.
//
// Notifications only queue work: pushes run on background workers,
// coalesced per object (a burst of changes to one network makes at most
// one push in flight and one more with the latest plan), retried with
// backoff while the host is Unavailable, and logged when they fail.
package dataplane

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/hosts"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Config configures a Syncer.
type Config struct {
	// Networks is the network service whose plans are pushed. It may be
	// nil here and given later with SetNetworks (the service takes the
	// Syncer as its Notifier when it is made), before any change is
	// notified.
	Networks *network.Service
	// Hosts is the registry of the hosts pushed to. Required.
	Hosts *hosts.Registry
	// ExternalBridge is the external network's bridge on the network host:
	// "br-ex" when empty.
	ExternalBridge string
	// NetworkHost picks the host that runs routers and DHCP servers; nil
	// is the first up host by hostname.
	NetworkHost func(ctx context.Context) (hostID string, err error)
	// DeviceName names the device (instance) of a port for its DHCP
	// hostname; nil, or "" returned, gives host-<ip-with-dashes>.
	DeviceName func(ctx context.Context, deviceID string) string
	// PhysicalInterfaces maps a flat or VLAN network's physical network to
	// the host NIC it rides on; a physical network not listed uses its own
	// name as the NIC.
	PhysicalInterfaces map[string]string
	// Workers is how many pushes run at once: 4 when zero.
	Workers int
	// RetryBackoff is the first wait before retrying a push to an
	// Unavailable host (doubling up to MaxBackoff): 1 s when zero.
	RetryBackoff time.Duration
	// MaxBackoff bounds the wait between retries: 30 s when zero.
	MaxBackoff time.Duration
	// MaxAttempts bounds the tries of one push: 6 when zero.
	MaxAttempts int
	// Debounce is how long a notified object waits before its push, so
	// that a burst of changes makes one push: 50 ms when zero, none when
	// negative.
	Debounce time.Duration
	// CallTimeout bounds one call to an agent: 30 s when zero.
	CallTimeout time.Duration
	// Logger receives failures; nil is slog.Default().
	Logger *slog.Logger
}

// Syncer pushes the network service's state to the hosts. It is safe for
// concurrent use.
type Syncer struct {
	cfg    Config
	log    *slog.Logger
	sys    context.Context // system credentials for listings
	svc    atomic.Pointer[network.Service]
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	cond      *sync.Cond
	queue     []string         // keys ready to run, FIFO
	tasks     map[string]*task // pending (queued, waiting for retry, or dirty while running)
	running   map[string]bool
	closed    bool
	wg        sync.WaitGroup
	netHosts  map[string]map[string]bool // network ID -> hosts it was pushed to
	portHost  map[string]string          // port ID -> host its security was pushed to
	rtrHost   map[string]string          // router ID -> host it was pushed to
	fipRouter map[string]string          // floating IP ID -> router it was pushed with
	seen      map[string]time.Time       // host ID -> last heartbeat heard
}

var _ hosts.Listener = (*Syncer)(nil)

var _ network.Notifier = (*Syncer)(nil)

type kind int

const (
	kindNetwork kind = iota
	kindRouter
	kindPort
	kindGroup
	kindAllRouters
	kindResync
)

// task is one pending push of an object, the latest notification winning.
type task struct {
	kind     kind
	id       string
	deleted  bool
	port     *network.Port // a deleted port as it was
	attempts int
	queued   bool // in s.queue, or due to be after a delay
}

func key(k kind, id string) string {
	return [...]string{"network/", "router/", "port/", "group/", "routers/", "resync/"}[k] + id
}

// New returns a running Syncer; Close stops it.
func New(cfg Config) *Syncer {
	if cfg.ExternalBridge == "" {
		cfg.ExternalBridge = "br-ex"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 50 * time.Millisecond
	} else if cfg.Debounce < 0 {
		cfg.Debounce = 0
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Syncer{
		cfg: cfg, log: cfg.Logger.With("component", "network-dataplane"),
		sys: auth.WithCredentials(context.Background(), &auth.Credentials{
			UserID: "nimbus-dataplane", UserName: "nimbus-dataplane", System: true,
			Roles: []string{"admin", "member", "reader"},
		}),
		tasks: map[string]*task{}, running: map[string]bool{},
		netHosts: map[string]map[string]bool{}, portHost: map[string]string{}, rtrHost: map[string]string{}, fipRouter: map[string]string{}, seen: map[string]time.Time{},
	}
	s.svc.Store(cfg.Networks)
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		s.wg.Add(1)
		go s.worker()
	}
	return s
}

// SetNetworks sets the network service read, for wiring where the service
// is made with the Syncer as its Notifier.
func (s *Syncer) SetNetworks(n *network.Service) { s.svc.Store(n) }

// net is the network service; a push before SetNetworks fails.
func (s *Syncer) net() *network.Service { return s.svc.Load() }

// Close stops the workers, abandoning queued pushes, and waits for the
// pushes under way to end.
func (s *Syncer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Flush waits until every queued push (retries included) is done, or ctx
// ends.
func (s *Syncer) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for (len(s.tasks) > 0 || len(s.running) > 0) && !s.closed {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.cond.Wait()
	}
	return nil
}

// enqueue records a notification; the latest one of an object wins.
func (s *Syncer) enqueue(t task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	k := key(t.kind, t.id)
	cur, ok := s.tasks[k]
	if ok {
		cur.deleted, cur.attempts = t.deleted, 0
		if t.port != nil {
			cur.port = t.port
		}
	} else {
		nt := t
		cur = &nt
		s.tasks[k] = cur
	}
	if !cur.queued && !s.running[k] {
		s.schedule(k, cur, s.cfg.Debounce)
	}
	// While running, the worker requeues it when done.
}

// schedule puts k in the queue after delay. s.mu is held.
func (s *Syncer) schedule(k string, t *task, delay time.Duration) {
	t.queued = true
	if delay <= 0 {
		s.queue = append(s.queue, k)
		s.cond.Broadcast()
		return
	}
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.queue = append(s.queue, k)
		s.cond.Broadcast()
	})
}

func (s *Syncer) worker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		k := s.queue[0]
		s.queue = s.queue[1:]
		t, ok := s.tasks[k]
		if !ok || s.running[k] {
			s.mu.Unlock()
			continue
		}
		delete(s.tasks, k)
		t.queued = false
		s.running[k] = true
		s.mu.Unlock()

		err := s.run(t)

		s.mu.Lock()
		delete(s.running, k)
		if next, ok := s.tasks[k]; ok {
			// Notified again while running: run again with the latest plan.
			if !next.queued {
				s.schedule(k, next, s.cfg.Debounce)
			}
		} else if err != nil && fault.KindOf(err) == fault.Unavailable && t.attempts+1 < s.cfg.MaxAttempts && !s.closed {
			t.attempts++
			wait := s.cfg.RetryBackoff << (t.attempts - 1)
			if wait > s.cfg.MaxBackoff || wait <= 0 {
				wait = s.cfg.MaxBackoff
			}
			s.log.Warn("push failed, retrying", "object", k, "attempt", t.attempts, "retry_in", wait, "err", err)
			s.tasks[k] = t
			s.schedule(k, t, wait)
		} else if err != nil {
			s.log.Error("push failed", "object", k, "err", err)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

func (s *Syncer) run(t *task) error {
	ctx := s.ctx
	if s.net() == nil {
		return fault.New(fault.Internal, "The network data plane has no network service.")
	}
	switch t.kind {
	case kindNetwork:
		return s.syncNetwork(ctx, t.id)
	case kindRouter:
		return s.syncRouter(ctx, t.id)
	case kindPort:
		return s.syncPort(ctx, t.id, t.port, t.deleted)
	case kindGroup:
		return s.syncGroup(ctx, t.id)
	case kindAllRouters:
		return s.syncAllRouters(ctx)
	case kindResync:
		return s.Resync(ctx)
	}
	return nil
}

// Notifier.

// NetworkChanged queues a push of the network.
func (s *Syncer) NetworkChanged(_ context.Context, op network.Op, n *network.Network) {
	s.enqueue(task{kind: kindNetwork, id: n.ID, deleted: op == network.OpDelete})
}

// SubnetChanged queues a push of the subnet's network.
func (s *Syncer) SubnetChanged(_ context.Context, _ network.Op, sn *network.Subnet) {
	s.enqueue(task{kind: kindNetwork, id: sn.NetworkID})
}

// PortChanged queues a push of the port's security, its network (DHCP
// hosts, the hosts it spans), the router it belongs to, and the ports
// whose rules name its groups as remote groups.
func (s *Syncer) PortChanged(_ context.Context, op network.Op, p *network.Port) {
	cp := *p
	s.enqueue(task{kind: kindNetwork, id: p.NetworkID})
	switch {
	case isCompute(p):
		s.enqueue(task{kind: kindPort, id: p.ID, deleted: op == network.OpDelete, port: &cp})
	case p.DeviceOwner == network.OwnerRouterInterface || p.DeviceOwner == network.OwnerRouterGateway:
		if p.DeviceID != "" {
			s.enqueue(task{kind: kindRouter, id: p.DeviceID})
		}
	default:
		s.mu.Lock()
		_, pushed := s.portHost[p.ID]
		s.mu.Unlock()
		if pushed { // no longer a compute port
			s.enqueue(task{kind: kindPort, id: p.ID, deleted: true, port: &cp})
		}
	}
	for _, g := range p.SecurityGroups {
		s.enqueue(task{kind: kindGroup, id: g})
	}
}

// RouterChanged queues a push of the router.
func (s *Syncer) RouterChanged(_ context.Context, _ network.Op, r *network.Router) {
	s.enqueue(task{kind: kindRouter, id: r.ID})
}

// FloatingIPChanged queues a push of the router the floating IP is, or
// was, associated through. A floating IP moving between routers is
// caught by the routers' own notifications or the next Resync.
func (s *Syncer) FloatingIPChanged(_ context.Context, _ network.Op, f *network.FloatingIP) {
	if f.RouterID != "" {
		s.enqueue(task{kind: kindRouter, id: f.RouterID})
	}
	s.mu.Lock()
	was, known := s.fipRouter[f.ID]
	s.mu.Unlock()
	switch {
	case known && was != f.RouterID:
		s.enqueue(task{kind: kindRouter, id: was})
	case !known && f.RouterID == "":
		// Disassociated from a router this Syncer has not pushed (a
		// restarted controller): push them all.
		s.enqueue(task{kind: kindAllRouters, id: "all"})
	}
}

// SecurityGroupChanged queues a push of every port in the group and in
// the groups whose rules name it as remote group; a deleted group's
// referrers are notified by the service on their own.
func (s *Syncer) SecurityGroupChanged(_ context.Context, op network.Op, g *network.SecurityGroup) {
	if op == network.OpDelete {
		return // no port uses a deleted group
	}
	s.enqueue(task{kind: kindGroup, id: g.ID})
}

// Resync prunes from every up host what no longer exists (deleted while
// the host was away or the controller down), then queues a push of every
// network, router and instance port, as after an agent joins or restarts,
// or the controller starts.
func (s *Syncer) Resync(ctx context.Context) error {
	if s.net() == nil {
		return fault.New(fault.Internal, "The network data plane has no network service.")
	}
	nets, rts, ports, err := s.everything(ctx)
	if err != nil {
		return err
	}
	keep := agentapi.NetworkKeep{Networks: []string{}, Routers: []string{}, Ports: []string{}}
	for _, n := range nets {
		keep.Networks = append(keep.Networks, n.ID)
	}
	for _, r := range rts {
		keep.Routers = append(keep.Routers, r.ID)
	}
	for _, p := range ports {
		keep.Ports = append(keep.Ports, p.ID)
	}
	if up, err := s.upHosts(ctx); err == nil {
		for _, h := range up {
			err := s.call(ctx, h.ID, func(ctx context.Context, c *hosts.Client) error { return c.PruneNetwork(ctx, keep) })
			if err != nil && fault.KindOf(err) != fault.NotImplemented {
				s.log.Warn("pruning a host's data plane failed", "host_id", h.ID, "err", err)
			}
		}
	}
	// Read again: what was created while the hosts pruned may have reached
	// them first and been pruned as unknown; pushing it again restores it.
	if nets, rts, ports, err = s.everything(ctx); err != nil {
		return err
	}
	for _, n := range nets {
		s.enqueue(task{kind: kindNetwork, id: n.ID})
	}
	for _, r := range rts {
		s.enqueue(task{kind: kindRouter, id: r.ID})
	}
	for _, p := range ports {
		if isCompute(&p) {
			s.enqueue(task{kind: kindPort, id: p.ID})
		}
	}
	return nil
}

// everything lists every network, router and port.
func (s *Syncer) everything(ctx context.Context) ([]network.Network, []network.Router, []network.Port, error) {
	sys := s.sysCtx(ctx)
	nets, _, err := s.net().ListNetworks(sys, network.ListOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	rts, _, err := s.net().ListRouters(sys, network.ListOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	ports, _, err := s.net().ListPorts(sys, network.ListOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	return nets, rts, ports, nil
}

func (s *Syncer) sysCtx(ctx context.Context) context.Context {
	c, _ := auth.FromContext(s.sys)
	return auth.WithCredentials(ctx, c)
}

func isCompute(p *network.Port) bool { return strings.HasPrefix(p.DeviceOwner, "compute:") }

// Hosts.

// upHosts returns the hosts that are up, by hostname.
func (s *Syncer) upHosts(ctx context.Context) ([]hosts.Host, error) {
	all, err := s.cfg.Hosts.List(ctx)
	if err != nil {
		return nil, err
	}
	now, down := time.Now(), s.cfg.Hosts.DownAfter()
	var up []hosts.Host
	for _, h := range all {
		if h.Up(now, down) {
			up = append(up, h)
		}
	}
	sort.Slice(up, func(i, j int) bool { return up[i].Hostname < up[j].Hostname })
	return up, nil
}

// networkHost returns the host that runs routers and DHCP servers.
func (s *Syncer) networkHost(ctx context.Context) (string, error) {
	if s.cfg.NetworkHost != nil {
		return s.cfg.NetworkHost(ctx)
	}
	up, err := s.upHosts(ctx)
	if err != nil {
		return "", err
	}
	if len(up) == 0 {
		return "", fault.New(fault.Unavailable, "No host is up to run the network services.")
	}
	return up[0].ID, nil
}

// call runs fn against host id's agent with a bounded time.
func (s *Syncer) call(ctx context.Context, hostID string, fn func(context.Context, *hosts.Client) error) error {
	c, err := s.cfg.Hosts.Client(ctx, hostID)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	return fn(cctx, c)
}

// firstErr returns the first error of errs, preferring an Unavailable one
// so that the push is retried; the others are logged.
func (s *Syncer) firstErr(what string, errs []error) error {
	var keep error
	for _, e := range errs {
		if e != nil && (keep == nil || fault.KindOf(e) == fault.Unavailable && fault.KindOf(keep) != fault.Unavailable) {
			keep = e
		}
	}
	for _, e := range errs {
		if e != nil && e != keep {
			s.log.Warn("push failed", "object", what, "err", e)
		}
	}
	return keep
}

// Heartbeat makes the Syncer a hosts.Listener: the first heartbeat of a
// host since the Syncer started, or after it was silent for longer than
// the registry's down time (a join, a restart, a host back up), queues a
// Resync, so that the host gets every network, router and port it should
// hold. It never reports orphans.
func (s *Syncer) Heartbeat(_ context.Context, h hosts.Host, _ agentapi.Heartbeat) ([]string, error) {
	now := time.Now()
	s.mu.Lock()
	last, ok := s.seen[h.ID]
	s.seen[h.ID] = now
	s.mu.Unlock()
	if !ok || now.Sub(last) > s.cfg.Hosts.DownAfter() {
		s.enqueue(task{kind: kindResync, id: "all"})
	}
	return nil, nil
}

// Events is part of hosts.Listener; the Syncer ignores instance events.
func (s *Syncer) Events(context.Context, hosts.Host, []agentapi.Event) error { return nil }

// Operation is part of hosts.Listener; the Syncer ignores operations.
func (s *Syncer) Operation(context.Context, hosts.Host, agentapi.Operation) error { return nil }

// WirePort puts an instance port's network on the host the port is bound
// to and applies the port's security there, before returning. Compute
// calls it between binding a port and booting the guest: libvirt refuses
// a NIC whose bridge does not exist yet, and a guest must never run a
// moment without its security rules. The queued pushes its changes also
// made run as well; both converge to the same state.
func (s *Syncer) WirePort(ctx context.Context, portID string) error {
	if s.net() == nil {
		return fault.New(fault.Internal, "The network data plane has no network service.")
	}
	sys := s.sysCtx(ctx)
	plan, err := s.net().PortPlan(sys, portID)
	if err != nil {
		return err
	}
	if err := s.syncNetwork(sys, plan.Port.NetworkID); err != nil {
		return err
	}
	return s.syncPort(sys, portID, nil, false)
}

// NetworkHostID is the host that runs routers, DHCP servers and metadata
// proxies now. Faults: Unavailable when no host is up.
func (s *Syncer) NetworkHostID(ctx context.Context) (string, error) { return s.networkHost(ctx) }
