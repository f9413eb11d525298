package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

type validatorFunc func(ctx context.Context, tok string) (*Credentials, error)

func (f validatorFunc) ValidateToken(ctx context.Context, tok string) (*Credentials, error) {
	return f(ctx, tok)
}

func TestMiddleware(t *testing.T) {
	v := validatorFunc(func(_ context.Context, tok string) (*Credentials, error) {
		switch tok {
		case "good":
			return &Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}}, nil
		case "down":
			return nil, fault.New(fault.Unavailable, "identity unavailable")
		default:
			return nil, fault.Unauthorizedf("token expired at 10:00")
		}
	})
	writeFault := func(w http.ResponseWriter, _ *http.Request, err error) {
		w.WriteHeader(fault.Status(err))
		_ = json.NewEncoder(w).Encode(fault.KeystoneBody(err))
	}
	h := Middleware(v, func(*http.Request) string { return "http://x/identity" }, writeFault)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := FromContext(r.Context())
			if !ok || !c.HasRole("member") || c.IsAdmin() || !c.Scoped() {
				t.Errorf("credentials in context: %+v", c)
			}
			w.WriteHeader(http.StatusNoContent)
		}))
	cases := []struct {
		name       string
		token      string
		status     int
		challenged bool
	}{
		{"valid", "good", http.StatusNoContent, false},
		{"missing", "", http.StatusUnauthorized, true},
		{"invalid hides the reason", "expired", http.StatusUnauthorized, true},
		{"validator down", "down", http.StatusServiceUnavailable, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v3/projects", nil)
			if tc.token != "" {
				r.Header.Set("X-Auth-Token", tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			got := rec.Header().Get("WWW-Authenticate")
			if tc.challenged && got != `Keystone uri="http://x/identity"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if tc.status == http.StatusUnauthorized {
				var body struct{ Error struct{ Message string } }
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if body.Error.Message != "The request you have made requires authentication." {
					t.Errorf("401 message %q leaks or differs", body.Error.Message)
				}
			}
		})
	}
}

func TestCredentialsWithoutContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context yielded credentials")
	}
	if _, err := Caller(context.Background()); !fault.Is(err, fault.Unauthorized) {
		t.Fatalf("Caller without credentials = %v, want Unauthorized", err)
	}
	want := &Credentials{UserID: "u"}
	if got, err := Caller(WithCredentials(context.Background(), want)); got != want || err != nil {
		t.Fatalf("Caller = %v, %v", got, err)
	}
	var c *Credentials
	if c.HasRole("admin") {
		t.Fatal("nil credentials hold no role")
	}
}
