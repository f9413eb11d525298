package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRe = regexp.MustCompile(`listening on (\S+)`)

// startRun boots `nimbus controller` on 127.0.0.1:0 with dataDir and
// returns the base URL, the captured stdout and a stop function that waits
// for a clean exit.
func startRun(t *testing.T, dataDir string, extra ...string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	getenv := func(string) string { return "" }
	go func() {
		args := []string{"controller", "--listen", "127.0.0.1:0", "--data", dataDir}
		if len(extra) > 0 {
			args = append([]string{extra[0]}, append(args[1:], extra[1:]...)...)
		}
		done <- run(ctx, args, getenv, stdout, stderr)
	}()
	deadline := time.Now().Add(3 * time.Minute)
	var addr string
	for time.Now().Before(deadline) {
		if m := listenRe.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run exited early: %v\nstderr: %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("server did not report its address; stdout: %s stderr: %s", stdout.String(), stderr.String())
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after shutdown; stderr: %s", err, stderr.String())
			}
		case <-time.After(35 * time.Second):
			t.Errorf("run did not shut down")
		}
	}
	t.Cleanup(stop)
	return "http://" + addr, stdout, stop
}

func passwordToken(t *testing.T, base, user, password, project string) (*http.Response, map[string]any) {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"name": "Default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"name": "Default"}}},
	}}
	b, _ := json.Marshal(body)
	resp, err := http.Post(base+"/identity/v3/auth/tokens", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST auth/tokens: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func readOpenrc(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, openrcName))
	if err != nil {
		t.Fatalf("read admin-openrc: %v", err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok && strings.HasPrefix(line, "export ") {
			vars[k] = strings.Trim(v, "'")
		}
	}
	return vars
}

func TestRunBootstrapsOnceAndServesIdentity(t *testing.T) {
	dataDir := t.TempDir()
	base, stdout, stop := startRun(t, dataDir)

	rc := readOpenrc(t, dataDir)
	for _, k := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
		"OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_IDENTITY_API_VERSION"} {
		if rc[k] == "" {
			t.Errorf("admin-openrc lacks %s", k)
		}
	}
	if rc["OS_AUTH_URL"] != base+"/identity/v3" || rc["OS_IDENTITY_API_VERSION"] != "3" || rc["OS_USERNAME"] != "admin" {
		t.Errorf("admin-openrc = %v, want auth URL %s/identity/v3", rc, base)
	}
	if !strings.Contains(stdout.String(), rc["OS_PASSWORD"]) {
		t.Errorf("first start did not print the admin password; stdout: %s", stdout.String())
	}
	if fi, err := os.Stat(filepath.Join(dataDir, openrcName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-openrc mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	resp, body := passwordToken(t, base, "admin", rc["OS_PASSWORD"], "admin")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Subject-Token") == "" {
		t.Fatalf("admin login: status %d body %v", resp.StatusCode, body)
	}
	tok, _ := body["token"].(map[string]any)
	catalog, _ := tok["catalog"].([]any)
	if len(catalog) == 0 {
		t.Errorf("token has no catalog: %v", tok)
	}
	adminToken := resp.Header.Get("X-Subject-Token")
	types := map[string]bool{}
	for _, e := range catalog {
		types[e.(map[string]any)["type"].(string)] = true
	}
	for _, want := range []string{"identity", "image", "compute", "network"} {
		if !types[want] {
			t.Errorf("catalog service types = %v, want %s", types, want)
		}
	}
	// The image API is mounted and authenticates with identity's tokens.
	req, _ := http.NewRequest(http.MethodGet, base+"/image/v2/images", nil)
	req.Header.Set("X-Auth-Token", adminToken)
	ir, err := http.DefaultClient.Do(req)
	if err != nil || ir.StatusCode != http.StatusOK {
		t.Fatalf("GET /image/v2/images: %v %v", ir, err)
	}
	ir.Body.Close()
	if ir, err := http.Get(base + "/image/v2/images"); err != nil || ir.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /image/v2/images without a token: %v %v, want 401", ir, err)
	}
	if resp, _ := passwordToken(t, base, "admin", "wrong-password", "admin"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", resp.StatusCode)
	}

	// The dashboard's login page is served at the root listener too.
	lr, err := http.Get(base + "/auth/login")
	if err != nil || lr.StatusCode != http.StatusOK {
		t.Fatalf("GET /auth/login: %v %v", lr, err)
	}
	lr.Body.Close()
	if lr.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("dashboard page without a Content-Security-Policy")
	}
	stop()

	// A second start changes nothing and prints no password.
	before, _ := os.ReadFile(filepath.Join(dataDir, openrcName))
	base2, stdout2, stop2 := startRun(t, dataDir)
	if strings.Contains(stdout2.String(), "password") {
		t.Errorf("second start printed a password: %s", stdout2.String())
	}
	after := readOpenrc(t, dataDir)
	if after["OS_PASSWORD"] != rc["OS_PASSWORD"] {
		t.Errorf("second start changed the admin password in admin-openrc")
	}
	if base2 == base {
		afterRaw, _ := os.ReadFile(filepath.Join(dataDir, openrcName))
		if !bytes.Equal(before, afterRaw) {
			t.Errorf("second start on the same address rewrote admin-openrc")
		}
	} else if after["OS_AUTH_URL"] != base2+"/identity/v3" {
		t.Errorf("admin-openrc auth URL %q not updated to the new address %s", after["OS_AUTH_URL"], base2)
	}
	if resp, body := passwordToken(t, base2, "admin", rc["OS_PASSWORD"], "admin"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin login after restart: status %d body %v", resp.StatusCode, body)
	}
	if resp, body := passwordToken(t, base2, "demo", "x", "demo"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("demo with a wrong password: status %d body %v", resp.StatusCode, body)
	}
	stop2()
}

func TestRunGracefulShutdownFinishesInFlight(t *testing.T) {
	dataDir := t.TempDir()
	base, _, stop := startRun(t, dataDir)
	rc := readOpenrc(t, dataDir)

	// Start a login (bcrypt makes it take a while) and stop the server while
	// it may still be running: it must complete with its real answer.
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin",` +
		`"domain":{"name":"Default"},"password":` + strconvQuote(rc["OS_PASSWORD"]) + `}}}}}`
	result := make(chan string, 1)
	go func() {
		resp, err := http.Post(base+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			result <- err.Error()
			return
		}
		resp.Body.Close()
		result <- resp.Status
	}()
	// Give the request time to be accepted, then shut down under it.
	time.Sleep(30 * time.Millisecond)
	stop()
	if got := <-result; got != "201 Created" {
		t.Errorf("in-flight login answered %q during shutdown, want 201 Created", got)
	}
	// The database was closed cleanly: the WAL was checkpointed away.
	if _, err := os.Stat(filepath.Join(dataDir, "nimbus.db-wal")); err == nil {
		fi, _ := os.Stat(filepath.Join(dataDir, "nimbus.db-wal"))
		if fi.Size() != 0 {
			t.Errorf("nimbus.db-wal left with %d bytes after shutdown", fi.Size())
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"launch"}, "unknown command"},
		{"bad ttl", []string{"up", "--token-ttl", "5s"}, "--token-ttl"},
		{"tls half", []string{"up", "--tls-cert", "c.pem"}, "go together"},
		{"bad public url", []string{"up", "--public-url", "ftp://x"}, "--public-url"},
		{"stray arg", []string{"controller", "extra"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%v) = %v, want error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestShellQuote(t *testing.T) {
	cases := map[string]string{
		"abc-123":   "abc-123",
		"a b":       "'a b'",
		"it's":      `'it'\''s'`,
		"$(reboot)": "'$(reboot)'",
		"":          "''",
	}
	for in, want := range cases {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunRegistersTinyImageOnce(t *testing.T) {
	dataDir := t.TempDir()
	// Any valid qcow2 stands in for the built guest image here; the boot of
	// the real one is tested in backend/image/tinyimage.
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2",
		filepath.Join(dataDir, tinyImageFile), "16M").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img: %v %s", err, out)
		}
		t.Skipf("qemu-img unavailable (install qemu-utils): %v", err)
	}
	images := func(base, password string) []any {
		resp, _ := passwordToken(t, base, "demo", password, "demo")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("demo login: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/image/v2/images?name=tiny", nil)
		req.Header.Set("X-Auth-Token", resp.Header.Get("X-Subject-Token"))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var body struct{ Images []any }
		_ = json.NewDecoder(r.Body).Decode(&body)
		return body.Images
	}
	base, _, stop := startRun(t, dataDir)
	// The demo user sees the public image; give it a known password first.
	setDemoPassword(t, base, readOpenrc(t, dataDir)["OS_PASSWORD"], "demo-pass-123")
	first := images(base, "demo-pass-123")
	if len(first) != 1 || first[0].(map[string]any)["visibility"] != "public" || first[0].(map[string]any)["status"] != "active" {
		t.Fatalf("tiny image after first start = %v", first)
	}
	stop()
	base2, _, stop2 := startRun(t, dataDir)
	second := images(base2, "demo-pass-123")
	if len(second) != 1 || second[0].(map[string]any)["id"] != first[0].(map[string]any)["id"] {
		t.Fatalf("second start changed the tiny image: %v", second)
	}
	stop2()
}

// setDemoPassword sets the demo user's password as admin.
func setDemoPassword(t *testing.T, base, adminPassword, password string) {
	t.Helper()
	resp, _ := passwordToken(t, base, "admin", adminPassword, "admin")
	tok := resp.Header.Get("X-Subject-Token")
	get := func(path string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("X-Auth-Token", tok)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		return m
	}
	users := get("/identity/v3/users?name=demo")["users"].([]any)
	id := users[0].(map[string]any)["id"].(string)
	body := `{"user":{"password":` + strconvQuote(password) + `}}`
	req, _ := http.NewRequest(http.MethodPatch, base+"/identity/v3/users/"+id, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("set demo password: %v %v", r, err)
	}
	r.Body.Close()
}
