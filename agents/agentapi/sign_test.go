package agentapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	lookup := func(id string) ([]byte, bool) { return secret, id == "agent-1" }
	body := []byte(`{"kind":"start"}`)
	signed := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/agent/v1/instances/u1/actions?x=1", bytes.NewReader(body))
		Sign(r, "agent-1", secret, body, now)
		return r
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request) *http.Request
		at     time.Time
		ok     bool
	}{
		{"valid", func(r *http.Request) *http.Request { return r }, now, true},
		{"clock skew within bounds", func(r *http.Request) *http.Request { return r }, now.Add(4 * time.Minute), true},
		{"stale", func(r *http.Request) *http.Request { return r }, now.Add(6 * time.Minute), false},
		{"from the future", func(r *http.Request) *http.Request { return r }, now.Add(-6 * time.Minute), false},
		{"unknown agent", func(r *http.Request) *http.Request { r.Header.Set(HeaderAgentID, "agent-2"); return r }, now, false},
		{"tampered body", func(r *http.Request) *http.Request {
			r.Body = io.NopCloser(bytes.NewReader([]byte(`{"kind":"stop"}`)))
			return r
		}, now, false},
		{"tampered path", func(r *http.Request) *http.Request { r.URL.Path = "/agent/v1/instances/u2/actions"; return r }, now, false},
		{"tampered method", func(r *http.Request) *http.Request { r.Method = http.MethodDelete; return r }, now, false},
		{"no signature", func(r *http.Request) *http.Request { r.Header.Del(HeaderSignature); return r }, now, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(func() time.Time { return tc.at })
			r := tc.mutate(signed())
			id, err := v.Verify(r, 1<<20, lookup)
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %q, %v; want ok=%v", id, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSignature) {
				t.Errorf("error %v is not ErrBadSignature", err)
			}
			if tc.ok {
				got, _ := io.ReadAll(r.Body)
				if id != "agent-1" || !bytes.Equal(got, body) {
					t.Errorf("id %q, restored body %q", id, got)
				}
			}
		})
	}
}

func TestVerifyRefusesReplayAndOversizedBody(t *testing.T) {
	secret := []byte("k")
	now := time.Now()
	v := NewVerifier(func() time.Time { return now })
	lookup := func(string) ([]byte, bool) { return secret, true }
	body := []byte("payload")
	r := httptest.NewRequest(http.MethodPut, "/x", bytes.NewReader(body))
	Sign(r, "a", secret, body, now)
	replay := r.Clone(r.Context())
	replay.Body = io.NopCloser(bytes.NewReader(body))
	if _, err := v.Verify(r, 1024, lookup); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.Verify(replay, 1024, lookup); err == nil {
		t.Fatal("a replayed request was accepted")
	}
	big := bytes.Repeat([]byte("a"), 2048)
	r2 := httptest.NewRequest(http.MethodPut, "/x", bytes.NewReader(big))
	Sign(r2, "a", secret, big, now)
	if _, err := v.Verify(r2, 1024, lookup); err == nil {
		t.Fatal("an oversized body was accepted")
	}
	if s, err := DecodeSecret(EncodeSecret(secret)); err != nil || string(s) != "k" {
		t.Fatalf("secret round trip: %q %v", s, err)
	}
}
