package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// msgUnauthorized is the one answer to every failed authentication, so a
// client learns nothing about which part was wrong.
const msgUnauthorized = "The request you have made requires authentication."

// Config configures the identity service. Zero values take the defaults.
type Config struct {
	// TokenTTL is how long an issued token lives: 1h when zero.
	TokenTTL time.Duration
	// Policy is the engine with identity's PolicyRules registered; when nil
	// the service builds one from PolicyRules.
	Policy *policy.Engine
	// Now is the clock, time.Now when nil.
	Now func() time.Time
	// BcryptCost is the cost of new password hashes: 10 when zero. Tests
	// use bcrypt.MinCost.
	BcryptCost int
	// LoginMaxFailures is how many failed logins one user name, or one
	// source address, may make within LoginWindow before further attempts
	// are refused until the window passes: 5 when zero, no limit when
	// negative.
	LoginMaxFailures int
	// LoginWindow is the throttling window: 5 minutes when zero.
	LoginWindow time.Duration
}

// Service is the identity service. It is safe for concurrent use.
type Service struct {
	db  *db.DB
	st  *store
	cfg Config
	pol *policy.Engine

	signer *signer
	rev    *revocationList

	// clockMu guards last, the latest stamp handed out. Token issue times
	// and revocation events are ordered by stamps that strictly increase,
	// so an event never ties with a token issued after it.
	clockMu sync.Mutex
	last    int64

	dummyHash []byte // compared against when a user does not exist, so timing is the same
	userFails *throttle
	srcFails  *throttle
}

// The auth middleware validates tokens through the service.
var _ auth.Validator = (*Service)(nil)

// tokenKeySecret names the signing key in the secrets table, which every
// replica shares.
const tokenKeySecret = "identity.token_signing_key"

// New returns the identity service over d, whose migrations must have been
// applied. It loads (or creates, once) the token signing key and the
// revocation events still relevant.
func New(ctx context.Context, d *db.DB, cfg Config) (*Service, error) {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = defaultBcryptCost
	}
	if cfg.LoginMaxFailures == 0 {
		cfg.LoginMaxFailures = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 5 * time.Minute
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New(PolicyRules())
	}
	s := &Service{
		db: d, st: &store{db: d}, cfg: cfg, pol: cfg.Policy,
		rev:       newRevocationList(),
		userFails: newThrottle(cfg.LoginMaxFailures, cfg.LoginWindow),
		srcFails:  newThrottle(cfg.LoginMaxFailures, cfg.LoginWindow),
	}
	enc, err := s.st.secret(ctx, tokenKeySecret, func() string {
		var k [32]byte
		_, _ = rand.Read(k[:])
		return base64.StdEncoding.EncodeToString(k[:])
	})
	if err != nil {
		return nil, fmt.Errorf("load token signing key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("token signing key in secrets table is malformed")
	}
	s.signer = newSigner(key)
	if s.dummyHash, err = hashPassword("nimbus-dummy-password", cfg.BcryptCost); err != nil {
		return nil, err
	}
	s.rev.lastPrune = s.now() // the prune below starts the first period
	if err := s.pruneRevocations(ctx); err != nil {
		return nil, err
	}
	if err := s.RefreshRevocations(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// now is the service clock.
func (s *Service) now() time.Time { return s.cfg.Now() }

// stamp returns a timestamp in Unix nanoseconds strictly after every stamp
// returned before, even if the clock stands still or steps back.
func (s *Service) stamp() int64 {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	n := s.cfg.Now().UnixNano()
	if n <= s.last {
		n = s.last + 1
	}
	s.last = n
	return n
}

// observe moves the stamp clock past ns, so tokens issued later sort after
// an event loaded from the database.
func (s *Service) observe(ns int64) {
	s.clockMu.Lock()
	if ns > s.last {
		s.last = ns
	}
	s.clockMu.Unlock()
}

// authorize checks that the caller in ctx may perform action on t.
func (s *Service) authorize(ctx context.Context, action string, t policy.Target) (*auth.Credentials, error) {
	return s.pol.Authorize(ctx, action, t)
}
