package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatusAndBodies(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		keystone   string
		novaKey    string
		neutronTyp string
		message    string
	}{
		{"invalid", Invalidf("bad %s", "cidr"), 400, "Bad Request", "badRequest", "BadRequest", "bad cidr"},
		{"not found", NotFoundf("Could not find project: %s.", "p1"), 404, "Not Found", "itemNotFound", "NotFound", "Could not find project: p1."},
		{"conflict", Conflictf("dup"), 409, "Conflict", "conflictingRequest", "Conflict", "dup"},
		{"unauthorized", Unauthorizedf("auth"), 401, "Unauthorized", "unauthorized", "NotAuthorized", "auth"},
		{"forbidden", Forbiddenf("no"), 403, "Forbidden", "forbidden", "PolicyNotAuthorized", "no"},
		{"over quota", OverQuotaf("quota"), 403, "Forbidden", "forbidden", "OverQuota", "quota"},
		{"typed", Conflictf("in use").WithType("NetworkInUse"), 409, "Conflict", "conflictingRequest", "NetworkInUse", "in use"},
		{"wrapped", fmt.Errorf("ctx: %w", NotFoundf("gone")), 404, "Not Found", "itemNotFound", "NotFound", "gone"},
		{"plain error hides its text", errors.New("secret db path"), 500, "Internal Server Error", "computeFault", "InternalServerError",
			"An unexpected error prevented the server from fulfilling your request."},
		{"internal kind hides its text", Wrap(Internal, errors.New("x"), "leaky"), 500, "Internal Server Error", "computeFault", "InternalServerError",
			"An unexpected error prevented the server from fulfilling your request."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Status(tc.err); got != tc.status {
				t.Errorf("Status = %d, want %d", got, tc.status)
			}
			var ks struct {
				Error struct {
					Code    int    `json:"code"`
					Title   string `json:"title"`
					Message string `json:"message"`
				} `json:"error"`
			}
			roundTrip(t, KeystoneBody(tc.err), &ks)
			if ks.Error.Code != tc.status || ks.Error.Title != tc.keystone || ks.Error.Message != tc.message {
				t.Errorf("Keystone body = %+v", ks)
			}
			var nova map[string]struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			roundTrip(t, NovaBody(tc.err), &nova)
			if n, ok := nova[tc.novaKey]; !ok || n.Code != tc.status || n.Message != tc.message {
				t.Errorf("Nova body = %+v, want key %s", nova, tc.novaKey)
			}
			var neutron struct {
				NeutronError struct {
					Type    string `json:"type"`
					Message string `json:"message"`
					Detail  string `json:"detail"`
				}
			}
			roundTrip(t, NeutronBody(tc.err), &neutron)
			if neutron.NeutronError.Type != tc.neutronTyp || neutron.NeutronError.Message != tc.message {
				t.Errorf("Neutron body = %+v", neutron)
			}
		})
	}
}

func TestKindHelpers(t *testing.T) {
	cause := errors.New("sql: no rows")
	err := fmt.Errorf("load: %w", Wrap(NotFound, cause, "Could not find user: u."))
	if !Is(err, NotFound) || Is(err, Conflict) {
		t.Errorf("Is mismatched for %v", err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("the cause is not reachable through Unwrap")
	}
	if KindOf(errors.New("x")) != Internal {
		t.Errorf("an error without a kind must be Internal")
	}
	if Status(New(TooLarge, "big")) != http.StatusRequestEntityTooLarge {
		t.Errorf("TooLarge must be 413")
	}
}

func roundTrip(t *testing.T, v any, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

func TestWireNamesRoundTrip(t *testing.T) {
	for k := range table {
		name := k.String()
		if name == "" {
			t.Fatalf("kind %d has no wire name", k)
		}
		if got, ok := ParseKind(name); !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, got, ok, k)
		}
	}
	if k, ok := ParseKind("no-such-kind"); ok || k != Internal {
		t.Errorf("unknown wire name parsed as %v, %v", k, ok)
	}
}
