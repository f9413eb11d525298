package identity

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// defaultBcryptCost is bcrypt's own default: about 50 ms per hash on a
// current core, which bounds online guessing without making logins slow.
const defaultBcryptCost = 10

// maxPasswordBytes is bcrypt's input limit; longer passwords would be
// silently truncated, so they are refused.
const maxPasswordBytes = 72

// checkPassword refuses what bcrypt cannot hash faithfully.
func checkPassword(pw string) error {
	if pw == "" {
		return fault.Invalidf("Invalid input for field 'password': a password is required.")
	}
	if len(pw) > maxPasswordBytes {
		return fault.Invalidf("Invalid input for field 'password': a password is at most %d bytes.", maxPasswordBytes)
	}
	return nil
}

func hashPassword(pw string, cost int) ([]byte, error) {
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "hash password")
	}
	return h, nil
}

// passwordMatches compares pw with hash; an empty hash (a user created
// without a password) never matches, but still costs a comparison against
// dummy so its timing gives nothing away.
func passwordMatches(hash, dummy []byte, pw string) bool {
	if len(pw) > maxPasswordBytes || pw == "" {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte("x"))
		return false
	}
	if len(hash) == 0 {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
}

// randomPassword returns 24 URL-safe characters (144 bits).
func randomPassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// throttle counts failed logins per key (a user, or a source address) in a
// fixed window that opens at the first failure: after max failures, the key
// is refused until the window closes.
type throttle struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]*failures
}

type failures struct {
	n     int
	first time.Time
}

// maxThrottleKeys bounds memory under a spray of distinct names or sources;
// expired entries are swept when it is reached.
const maxThrottleKeys = 100_000

func newThrottle(max int, window time.Duration) *throttle {
	return &throttle{max: max, window: window, m: map[string]*failures{}}
}

// blocked reports whether key has used up its failures.
func (t *throttle) blocked(key string, now time.Time) bool {
	if t.max < 0 || key == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[key]
	if f == nil {
		return false
	}
	if now.Sub(f.first) >= t.window {
		delete(t.m, key)
		return false
	}
	return f.n >= t.max
}

// fail records a failure for key.
func (t *throttle) fail(key string, now time.Time) {
	if t.max < 0 || key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[key]
	if f == nil || now.Sub(f.first) >= t.window {
		if len(t.m) >= maxThrottleKeys {
			for k, v := range t.m {
				if now.Sub(v.first) >= t.window {
					delete(t.m, k)
				}
			}
		}
		f = &failures{first: now}
		t.m[key] = f
	}
	f.n++
}

// reset forgets key's failures, after a successful login.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}
