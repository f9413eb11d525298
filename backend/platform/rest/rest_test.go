package rest

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	cases := []struct {
		name    string
		in      string
		strict  bool
		wantErr string
	}{
		{"ok", `{"name":"a","count":2}`, true, ""},
		{"empty", ``, true, "empty"},
		{"malformed", `{"name":`, true, "Malformed JSON"},
		{"syntax", `{"name" "a"}`, true, "Malformed JSON"},
		{"wrong type", `{"count":"two"}`, true, "'count'"},
		{"unknown strict", `{"nmae":"a"}`, true, `additional property "nmae"`},
		{"unknown lenient", `{"nmae":"a"}`, false, ""},
		{"trailing", `{"name":"a"} {}`, true, "trailing"},
		{"too large", `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, true, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.in))
			var b body
			err := Decode(r, &b, tc.strict)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(fault.Message(err), tc.wantErr) {
				t.Fatalf("Decode err = %v, want %q", err, tc.wantErr)
			}
			if k := fault.KindOf(err); k != fault.Invalid && k != fault.TooLarge {
				t.Errorf("kind = %v, want Invalid or TooLarge", k)
			}
		})
	}
}

func TestRequestIDAndFault(t *testing.T) {
	var seen string
	h := WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = RequestID(r.Context())
		Fault(w, r, fault.NovaBody, fault.NotFoundf("Instance x could not be found."))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	id := rec.Header().Get(RequestIDHeader)
	if !regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) || id != seen {
		t.Errorf("request id header %q, context %q", id, seen)
	}
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"itemNotFound"`) ||
		rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("fault response %d %q", rec.Code, rec.Body.String())
	}
}

func TestRequestIDKeptThroughNesting(t *testing.T) {
	var inner string
	h := WithRequestID(WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = RequestID(r.Context())
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := rec.Header().Get(RequestIDHeader); got == "" || got != inner {
		t.Fatalf("nested request IDs: header %q, handler saw %q", got, inner)
	}
	if vs := rec.Header().Values(RequestIDHeader); len(vs) != 1 {
		t.Fatalf("request ID header set %d times", len(vs))
	}
}

func TestOrigin(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://cloud.example:8080/x", nil)
	if got := Origin(r); got != "http://cloud.example:8080" {
		t.Errorf("Origin = %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	if got := Origin(r); got != "https://cloud.example:8080" {
		t.Errorf("Origin over TLS = %q", got)
	}
}
