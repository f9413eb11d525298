package rest

import (
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
