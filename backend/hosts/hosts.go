// Package hosts is the control plane's registry of hypervisor hosts and its
// signed client to their node agents (DESIGN §3). Agents join with a join
// token and receive their own HMAC credential; from then on every call in
// either direction is signed with it (agentapi.Sign / Verifier). The
// registry keeps each host's inventory and last heartbeat, decides whether
// it is up, and forwards heartbeats, lifecycle events and operation outcomes
// to the services that subscribe (compute).
package hosts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// Defaults for Config's zero values.
const (
	DefaultDownAfter         = 60 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
)

// Config configures a Registry. Zero values take the defaults.
type Config struct {
	// DownAfter is how long a host may stay silent before it counts as down.
	DownAfter time.Duration
	// HeartbeatInterval is what joining agents are told to heartbeat at.
	HeartbeatInterval time.Duration
	// Policy decides who may create join tokens; nil means an engine with
	// PolicyRules. PolicyRules are registered into a given engine.
	Policy *policy.Engine
	// Now is the clock for heartbeats, token expiry and up/down; nil is
	// time.Now. Request signatures always use the wall clock, since the
	// agent on the other side does.
	Now func() time.Time
	// HTTPClient carries calls to agents; nil is a client with a 60 s
	// timeout. VNC websocket dials reuse its *http.Transport's dialer and
	// TLS settings, when it has one.
	HTTPClient *http.Client
	// Logger receives warnings; nil is slog.Default().
	Logger *slog.Logger
	// Events, when set, hears of hosts going up or down and being enabled
	// or disabled; nil publishes none.
	Events events.Publisher
}

// Host is one hypervisor host as the registry knows it.
type Host struct {
	ID             string
	Hostname       string
	URL            string
	Inventory      agentapi.Inventory
	LastHeartbeat  time.Time
	Disabled       bool
	DisabledReason string
	// ForcedDown is the operator's "this host is dead" mark
	// (os-services forced_down); it keeps the host down whatever it reports.
	ForcedDown bool
	CreatedAt  time.Time
}

// Up reports whether the host heartbeated within downAfter of now and is not
// forced down.
func (h Host) Up(now time.Time, downAfter time.Duration) bool {
	if h.ForcedDown || h.LastHeartbeat.IsZero() {
		return false
	}
	return now.Sub(h.LastHeartbeat) <= downAfter
}

// Listener receives what agents report. Agents retry deliveries that fail,
// so every method must be idempotent; an error makes the agent retry later.
type Listener interface {
	// Heartbeat sees each heartbeat after the host's inventory is stored and
	// answers the reported instances the listener does not know (orphans),
	// which the agent destroys.
	Heartbeat(ctx context.Context, host Host, hb agentapi.Heartbeat) (orphans []string, err error)
	// Events sees lifecycle events as they happen on the host.
	Events(ctx context.Context, host Host, evs []agentapi.Event) error
	// Operation sees the outcome of long work the host was asked to do.
	Operation(ctx context.Context, host Host, op agentapi.Operation) error
}

// ImageSource is the image store agents read base images from and write
// snapshots to, through the registry's handler.
type ImageSource interface {
	// OpenImage returns the content of image id for an agent's base-image
	// cache, with its size in bytes (-1 if unknown).
	OpenImage(ctx context.Context, id string) (io.ReadCloser, int64, error)
	// UploadImage stores the content of image id (a snapshot an agent
	// uploads), size bytes. r fails (and never yields all size bytes) when
	// the content does not match the size and SHA-256 the agent signed; an
	// implementation must not commit an upload whose reader failed or came
	// up short.
	UploadImage(ctx context.Context, id string, r io.Reader, size int64) error
}

// Registry is the control plane's view of its hosts. It is safe for
// concurrent use.
type Registry struct {
	store     *store
	cfg       Config
	log       *slog.Logger
	verifier  *agentapi.Verifier
	mu        sync.RWMutex
	listeners []Listener
	images    ImageSource
	metadata  MetadataSource
	liveMu    sync.Mutex
	live      liveness
}

// New returns a registry over d, whose migrations must have been applied.
func New(ctx context.Context, d *db.DB, cfg Config) (*Registry, error) {
	if d == nil {
		return nil, fault.New(fault.Internal, "hosts: no database")
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = DefaultDownAfter
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New(PolicyRules())
	} else {
		cfg.Policy.Register(PolicyRules()...)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	r := &Registry{
		store:    &store{db: d},
		cfg:      cfg,
		log:      logger,
		verifier: agentapi.NewVerifier(nil),
		live:     liveness{known: map[string]hostState{}},
	}
	// Fail at wiring, not at the first join, when the schema is missing.
	known, err := r.store.list(ctx)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "hosts: database not ready")
	}
	if cfg.Events != nil {
		// The hosts as they are now are not news; taking that first look
		// here, not in the loop, means no change after New returns is
		// missed however late the loop starts.
		now := r.cfg.Now()
		for _, h := range known {
			r.announce(h, now, true)
		}
		go r.watchLiveness(ctx)
	}
	return r, nil
}

// PolicyRules returns the hosts registry's default policy. Creating a join
// token lets a machine become part of the cloud, so it is for admins and
// system-scoped callers only.
func PolicyRules() []policy.Rule {
	return append(policy.BaseRules(),
		policy.Rule{Name: "hosts:create_join_token", Check: "rule:admin_required or system_scope:all",
			Description: "Create a join token with which a node agent registers a hypervisor host."},
	)
}

// DownAfter is how long a host may be silent before it is down.
func (r *Registry) DownAfter() time.Duration { return r.cfg.DownAfter }

// HeartbeatInterval is the interval agents are told to heartbeat at.
func (r *Registry) HeartbeatInterval() time.Duration { return r.cfg.HeartbeatInterval }

// Subscribe adds l to the listeners that receive agents' reports. Call it
// at wiring, before agents report.
func (r *Registry) Subscribe(l Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = append(r.listeners, l)
}

// MetadataSource answers the metadata proxies of the agents: it finds the
// instance behind a guest's address on a router or network and returns
// the document asked for.
type MetadataSource interface {
	Metadata(ctx context.Context, host Host, req agentapi.MetadataRequest) (*agentapi.MetadataResponse, error)
}

// SetMetadataSource sets what answers the agents' metadata proxies; until
// it is set they get Unavailable.
func (r *Registry) SetMetadataSource(s MetadataSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metadata = s
}

func (r *Registry) metadataSource() MetadataSource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.metadata
}

// SetImageSource sets the image store agents fetch from and upload to.
func (r *Registry) SetImageSource(s ImageSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images = s
}

func (r *Registry) subscribers() []Listener {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Listener(nil), r.listeners...)
}

func (r *Registry) imageSource() ImageSource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.images
}

// joinTokenPrefix marks join tokens so they are recognisable in a config file.
const joinTokenPrefix = "nimbus-join-"

// CreateJoinToken returns a new join token valid for ttl, usable by any
// number of agents until it expires. Only its hash is stored, so it is
// shown once. The caller's credentials in ctx must pass
// "hosts:create_join_token" (an in-process bootstrap passes system-scoped
// admin credentials). Kinds: Forbidden, Invalid (ttl not positive),
// Internal.
func (r *Registry) CreateJoinToken(ctx context.Context, ttl time.Duration) (string, error) {
	c, _ := auth.FromContext(ctx)
	if err := r.cfg.Policy.Enforce("hosts:create_join_token", c, policy.Target{}); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fault.Invalidf("A join token needs a positive lifetime.")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, err, "generate join token")
	}
	tok := joinTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	now := r.cfg.Now()
	if err := r.store.createJoinToken(ctx, hashToken(tok), now.Add(ttl), now); err != nil {
		return "", err
	}
	return tok, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// List returns every host, ordered by hostname. Kinds: Internal.
func (r *Registry) List(ctx context.Context) ([]Host, error) { return r.store.list(ctx) }

// Get returns host id. Kinds: NotFound, Internal.
func (r *Registry) Get(ctx context.Context, id string) (*Host, error) {
	h, _, err := r.store.get(ctx, id)
	return h, err
}

// GetByHostname returns the host named hostname. Kinds: NotFound, Internal.
func (r *Registry) GetByHostname(ctx context.Context, hostname string) (*Host, error) {
	return r.store.getByHostname(ctx, hostname)
}

// SetDisabled enables or disables scheduling onto host id, with a reason
// shown in os-services (cleared on enable). Kinds: NotFound, Invalid, Internal.
func (r *Registry) SetDisabled(ctx context.Context, id string, disabled bool, reason string) error {
	if len(reason) > 255 {
		return fault.Invalidf("The disabled reason is longer than 255 characters.")
	}
	if !disabled {
		reason = ""
	}
	if err := r.store.setDisabled(ctx, id, disabled, reason, r.cfg.Now()); err != nil {
		return err
	}
	r.announceID(ctx, id)
	return nil
}

// SetForcedDown marks host id down (or lifts the mark) whatever its
// heartbeats say. Kinds: NotFound, Internal.
func (r *Registry) SetForcedDown(ctx context.Context, id string, down bool) error {
	if err := r.store.setForcedDown(ctx, id, down, r.cfg.Now()); err != nil {
		return err
	}
	r.announceID(ctx, id)
	return nil
}

// Delete removes host id and its credential; its agent can only come back
// with a join token. Kinds: NotFound, Internal.
func (r *Registry) Delete(ctx context.Context, id string) error {
	return r.store.delete(ctx, id)
}

// Client returns a signed client to host id's agent. Kinds: NotFound, Internal.
func (r *Registry) Client(ctx context.Context, hostID string) (*Client, error) {
	h, secret, err := r.store.get(ctx, hostID)
	if err != nil {
		return nil, err
	}
	return newClient(h.ID, h.URL, secret, r.cfg.HTTPClient), nil
}
