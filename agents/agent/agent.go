// Package agent is the Nimbus node agent: it joins a controller with a join
// token, keeps its own credential, serves the signed agent API (agentapi)
// for the control plane, runs spawns and actions asynchronously through a
// Driver (libvirt, or the fake for tests), reports their outcomes,
// heartbeats its inventory and instance states, forwards lifecycle events
// and reconciles after a restart (DESIGN §3, §10).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// Driver builds and runs instances on this host. Errors are *fault.Error:
// NotFound for an unknown instance, Conflict for an action the instance's
// state does not allow, Invalid for a spec the driver cannot honour.
// Implementations must be safe for concurrent use; the agent serialises
// work per instance, never across instances.
type Driver interface {
	// Inventory reports what the host offers.
	Inventory(ctx context.Context) (agentapi.Inventory, error)
	// Spawn builds and starts the instance, fetching its base image through
	// images. A failure must leave nothing behind.
	Spawn(ctx context.Context, spec agentapi.InstanceSpec, images Images) error
	// Destroy removes the instance and everything it held; a missing
	// instance is not an error.
	Destroy(ctx context.Context, uuid string) error
	// Action performs a lifecycle action and returns its output, such as
	// nothing, or a snapshot's details.
	Action(ctx context.Context, uuid string, a agentapi.Action, images Images) (map[string]string, error)
	// State reports one instance.
	State(ctx context.Context, uuid string) (agentapi.InstanceState, error)
	// List reports every Nimbus instance on the host, known to the
	// controller or not.
	List(ctx context.Context) ([]agentapi.InstanceState, error)
	// ConsoleLog returns the last lines of the serial console (all if <= 0).
	ConsoleLog(ctx context.Context, uuid string, lines int) (string, error)
	// VNCPort is the loopback port of the instance's VNC server; Conflict
	// when the instance has none (it is not running).
	VNCPort(ctx context.Context, uuid string) (int, error)
	// Events delivers lifecycle changes as they happen. The driver never
	// blocks on it: when the agent falls behind, events are dropped, since
	// heartbeats carry every power state anyway.
	Events() <-chan agentapi.Event
	// Close releases the driver's connections.
	Close() error
}

// Images is what the agent lends its driver to reach the controller's image
// store.
type Images interface {
	// Fetch returns the path of the image's content in the host's cache,
	// downloading and verifying it (sha512) on first use. Concurrent fetches
	// of one image download it once.
	Fetch(ctx context.Context, img agentapi.Image) (string, error)
	// Upload sends the file at path as the content of image id (a snapshot).
	Upload(ctx context.Context, id, path string) error
}

// Config configures Run.
type Config struct {
	// ControllerURL is the control plane's base URL (the agent API is under
	// its /agents/v1/...).
	ControllerURL string
	// JoinToken is needed for the first start, and again only when the
	// controller refuses the stored credential.
	JoinToken string
	// Hostname names this host in the cloud.
	Hostname string
	// ListenAddr is where the agent API listens, unless Listener is set.
	ListenAddr string
	// Listener, when set, is used (and closed when Run returns) instead of
	// listening on ListenAddr.
	Listener net.Listener
	// AdvertiseURL is how the controller reaches the agent API; empty means
	// http://<listener address>.
	AdvertiseURL string
	// StateDir holds the credential, operation records and image cache.
	StateDir string
	// Driver runs the instances. Run does not close it: its creator does.
	Driver Driver
	// Network is the host's network data plane; nil means the agent serves
	// no network routes (they answer NotImplemented). Run does not close it.
	Network NetworkPlane
	// HeartbeatInterval overrides the interval the controller asks for.
	HeartbeatInterval time.Duration
	// Logger receives the agent's logs; nil is slog.Default().
	Logger *slog.Logger
	// HTTPClient carries calls to the controller; nil is a client with a
	// 30 s timeout (image transfers use its transport without a timeout).
	HTTPClient *http.Client
	// OnReady, when set, is called once the agent has its credential and
	// serves its API.
	OnReady func(agentID, url string)
}

// agent is one running agent.
type agent struct {
	cfg    Config
	log    *slog.Logger
	driver Driver
	ctl    *controller
	images *imageCache
	ops    *opTable
	verify *agentapi.Verifier
	url    string

	// ctx lives as long as Run; work started by requests derives from it so
	// a shutdown stops it.
	ctx context.Context

	locks sync.Map // uuid -> *instanceLock

	wg       sync.WaitGroup
	rejoinMu sync.Mutex
}

// Run runs the agent until ctx ends. It returns early only when it cannot
// start: bad configuration, an unusable state directory or listener, or a
// controller that refuses the join token.
func Run(ctx context.Context, cfg Config) error {
	if cfg.ControllerURL == "" || cfg.Hostname == "" || cfg.StateDir == "" || cfg.Driver == nil {
		return errors.New("agent: ControllerURL, Hostname, StateDir and Driver are required")
	}
	if cfg.Listener == nil && cfg.ListenAddr == "" {
		return errors.New("agent: ListenAddr or Listener is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "agent", "hostname", cfg.Hostname)
	// The state directory and image cache are traversable (not listable) by
	// others because qemu, running as its own user, opens disks below them;
	// the credential and operation records stay private.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{cfg.StateDir, 0o711}, {filepath.Join(cfg.StateDir, "ops"), 0o700}, {filepath.Join(cfg.StateDir, "images"), 0o711}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("agent: create state directory: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("agent: set state directory mode: %w", err)
		}
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return fmt.Errorf("agent: listen on %s: %w", cfg.ListenAddr, err)
		}
	}
	defer ln.Close()
	url := cfg.AdvertiseURL
	if url == "" {
		url = "http://" + ln.Addr().String()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &agent{
		cfg:    cfg,
		log:    log,
		driver: cfg.Driver,
		ctl:    newController(cfg.ControllerURL, hc),
		verify: agentapi.NewVerifier(nil),
		url:    strings.TrimRight(url, "/"),
		ctx:    ctx,
	}
	a.images = newImageCache(ctx, filepath.Join(cfg.StateDir, "images"), a.ctl, log, &a.wg)
	ops, err := loadOps(filepath.Join(cfg.StateDir, "ops"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.ops = ops
	if err := a.establishCredential(ctx); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 15 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("agent serving", "agent_id", a.ctl.credential().AgentID, "url", a.url)

	a.reconcileInterrupted()
	a.wg.Add(2)
	go a.heartbeatLoop()
	go a.forwardEvents()
	if mp, ok := cfg.Network.(MetadataPlane); ok {
		mp.ServeMetadata(metadataFetcher{a.ctl})
	}
	if cfg.OnReady != nil {
		cfg.OnReady(a.ctl.credential().AgentID, a.url)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("agent API server stopped", "err", err)
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	a.wg.Wait()
	return nil
}

// instanceLock serialises work on one instance. It is a channel so a waiter
// can give up when its context ends.
type instanceLock struct {
	ch     chan struct{}
	mu     sync.Mutex
	cancel map[string]context.CancelFunc // running operations, by op ID
}

func (a *agent) lockFor(uuid string) *instanceLock {
	l, _ := a.locks.LoadOrStore(uuid, &instanceLock{ch: make(chan struct{}, 1), cancel: map[string]context.CancelFunc{}})
	return l.(*instanceLock)
}

// lock takes uuid's lock, or fails when ctx ends first.
func (a *agent) lock(ctx context.Context, uuid string) (unlock func(), err error) {
	l := a.lockFor(uuid)
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cancelOps cancels every operation running or queued on uuid, so a destroy
// does not wait for a build it makes pointless.
func (a *agent) cancelOps(uuid string) {
	l := a.lockFor(uuid)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cancel {
		c()
	}
}

// busy reports whether an operation is running or queued on uuid.
func (a *agent) busy(uuid string) bool {
	v, ok := a.locks.Load(uuid)
	if !ok {
		return false
	}
	l := v.(*instanceLock)
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cancel) > 0
}

// destroy removes an instance under its lock after cancelling its work.
func (a *agent) destroy(ctx context.Context, uuid string) error {
	a.cancelOps(uuid)
	unlock, err := a.lock(ctx, uuid)
	if err != nil {
		return err
	}
	defer unlock()
	return a.driver.Destroy(ctx, uuid)
}
