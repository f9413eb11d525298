package agentapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MaxSkew is how far a signed request's timestamp may be from the
// receiver's clock; nonces are remembered for twice as long, so a captured
// request can never be replayed.
const MaxSkew = 5 * time.Minute

// ErrBadSignature is returned by Verify for any unauthenticated request. It
// never says which check failed.
var ErrBadSignature = errors.New("request signature is missing, stale, replayed or wrong")

// Sign adds the signing headers to r for agentID with secret (the raw key).
// body must be the exact bytes r will send (nil for none). The signature
// covers the method, the path with its query, the timestamp, the nonce and
// the body's SHA-256.
func Sign(r *http.Request, agentID string, secret, body []byte, now time.Time) {
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(HeaderAgentID, agentID)
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, signature(secret, r.Method, r.URL.RequestURI(), ts, nonce, body))
}

func signature(secret []byte, method, uri, ts, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, secret)
	for _, part := range []string{method, uri, ts, nonce, hex.EncodeToString(sum[:])} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verifier checks signed requests and remembers nonces to refuse replays.
// It is safe for concurrent use.
type Verifier struct {
	mu     sync.Mutex
	nonces map[string]time.Time
	now    func() time.Time
}

// NewVerifier returns a Verifier; now is time.Now when nil.
func NewVerifier(now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{nonces: map[string]time.Time{}, now: now}
}

// Verify authenticates r with the secret that secretFor returns for its
// agent ID, reading (and restoring) the body, which it bounds to maxBody
// bytes. It returns the agent ID on success and ErrBadSignature otherwise.
func (v *Verifier) Verify(r *http.Request, maxBody int64, secretFor func(agentID string) ([]byte, bool)) (string, error) {
	id := r.Header.Get(HeaderAgentID)
	ts := r.Header.Get(HeaderTimestamp)
	nonce := r.Header.Get(HeaderNonce)
	sig := r.Header.Get(HeaderSignature)
	if id == "" || ts == "" || len(nonce) < 16 || len(nonce) > 64 || sig == "" {
		return "", ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrBadSignature
	}
	now := v.now()
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return "", ErrBadSignature
	}
	secret, ok := secretFor(id)
	if !ok {
		return "", ErrBadSignature
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		r.Body.Close()
		if err != nil || int64(len(body)) > maxBody {
			return "", ErrBadSignature
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	want := signature(secret, r.Method, r.URL.RequestURI(), ts, nonce, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", ErrBadSignature
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	key := id + "/" + nonce
	if _, seen := v.nonces[key]; seen {
		return "", ErrBadSignature
	}
	v.nonces[key] = now
	if len(v.nonces) > 4096 {
		for k, t := range v.nonces {
			if now.Sub(t) > 2*MaxSkew {
				delete(v.nonces, k)
			}
		}
	}
	return id, nil
}

// EncodeSecret and DecodeSecret convert a credential secret to and from the
// text form JoinResponse carries.
func EncodeSecret(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// DecodeSecret parses a secret from JoinResponse.
func DecodeSecret(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
