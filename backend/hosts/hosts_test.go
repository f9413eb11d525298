package hosts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestCreateJoinTokenPolicy(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		ctx  context.Context
		ttl  time.Duration
		want fault.Kind // Internal means success here
	}{
		{"admin", adminCtx(), time.Hour, fault.Internal},
		{"system scope", auth.WithCredentials(context.Background(), &auth.Credentials{UserID: "u", System: true, Roles: []string{"reader"}}), time.Hour, fault.Internal},
		{"member", auth.WithCredentials(context.Background(), &auth.Credentials{UserID: "u", ProjectID: "p", Roles: []string{"member", "reader"}}), time.Hour, fault.Forbidden},
		{"no credentials", context.Background(), time.Hour, fault.Forbidden},
		{"zero ttl", adminCtx(), 0, fault.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.reg.CreateJoinToken(tc.ctx, tc.ttl)
			if tc.want == fault.Internal {
				if err != nil || !strings.HasPrefix(tok, "nimbus-join-") {
					t.Fatalf("CreateJoinToken = %q, %v", tok, err)
				}
				return
			}
			if !isKind(err, tc.want) {
				t.Fatalf("err = %v, want kind %v", err, tc.want)
			}
		})
	}
	// Only a hash is stored.
	tok := e.token(t)
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM host_join_tokens WHERE token_hash = ?`, tok).Scan(&n); err != nil || n != 0 {
		t.Fatalf("token stored in clear: n=%d err=%v", n, err)
	}
}

func TestJoin(t *testing.T) {
	e := newEnv(t)
	good := e.token(t)
	expiring, err := e.reg.CreateJoinToken(adminCtx(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)

	tests := []struct {
		name, token, hostname, url string
		want                       int
	}{
		{"good", good, "node1", "http://10.0.0.1:8775", http.StatusOK},
		{"multi-use", good, "node2", "http://10.0.0.2:8775", http.StatusOK},
		{"unknown token", "nimbus-join-nope", "node3", "http://10.0.0.3:8775", http.StatusUnauthorized},
		{"empty token", "", "node3", "http://10.0.0.3:8775", http.StatusUnauthorized},
		{"expired token", expiring, "node3", "http://10.0.0.3:8775", http.StatusUnauthorized},
		{"hostname with newline", good, "node\n4", "http://10.0.0.4:8775", http.StatusBadRequest},
		{"hostname with markup", good, "<b>x</b>", "http://10.0.0.4:8775", http.StatusBadRequest},
		{"url with credentials", good, "node4", "http://u:p@10.0.0.4:8775", http.StatusBadRequest},
		{"url not http", good, "node4", "file:///etc/passwd", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, jr := e.join(t, tc.token, tc.hostname, tc.url)
			if code != tc.want {
				t.Fatalf("join status %d, want %d", code, tc.want)
			}
			if code == http.StatusOK && (jr.AgentID == "" || jr.Secret == "" || jr.HeartbeatSeconds != 1) {
				t.Fatalf("bad credential %+v", jr)
			}
		})
	}
	list, err := e.reg.List(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d hosts, %v; want 2", len(list), err)
	}
	h, err := e.reg.GetByHostname(context.Background(), "node1")
	if err != nil || h.URL != "http://10.0.0.1:8775" || h.Inventory.VCPUs != 4 {
		t.Fatalf("GetByHostname = %+v, %v", h, err)
	}
	if _, err := e.reg.Get(context.Background(), "nope"); !isKind(err, fault.NotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
}

func TestRejoinRotatesSecret(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t)
	_, first := e.join(t, tok, "node1", "http://10.0.0.1:1")
	if err := e.reg.SetDisabled(context.Background(), first.AgentID, true, "maintenance"); err != nil {
		t.Fatal(err)
	}
	_, second := e.join(t, tok, "node1", "http://10.0.0.1:2")
	if second.AgentID != first.AgentID {
		t.Fatalf("re-join made a new host: %s != %s", second.AgentID, first.AgentID)
	}
	if second.Secret == first.Secret {
		t.Fatal("re-join kept the secret")
	}
	hb := mustJSON(agentapi.Heartbeat{AgentID: first.AgentID})
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, first.AgentID, first.Secret, hb); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old secret: status %d, want 401", r.StatusCode)
	}
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, second.AgentID, second.Secret, hb); r.StatusCode != http.StatusOK {
		t.Fatalf("new secret: status %d, want 200", r.StatusCode)
	}
	h, err := e.reg.Get(context.Background(), first.AgentID)
	if err != nil || h.URL != "http://10.0.0.1:2" || !h.Disabled || h.DisabledReason != "maintenance" {
		t.Fatalf("after re-join: %+v, %v (URL must update, operator marks must stay)", h, err)
	}
}

func TestHeartbeatUpDown(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	ctx := context.Background()
	e.clock.Advance(time.Hour) // the join counted as life; let it go stale

	h, _ := e.reg.Get(ctx, cred.AgentID)
	if h.Up(e.clock.Now(), e.reg.DownAfter()) {
		t.Fatal("host up an hour after its join")
	}
	hb := agentapi.Heartbeat{AgentID: cred.AgentID, URL: "http://10.0.0.9:1",
		Inventory: agentapi.Inventory{VCPUs: 16, MemoryMB: 32768, DiskGB: 500, HypervisorType: "QEMU", VirtType: "kvm"}}
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat status %d", r.StatusCode)
	}
	h, _ = e.reg.Get(ctx, cred.AgentID)
	if !h.Up(e.clock.Now(), e.reg.DownAfter()) || h.Inventory.VCPUs != 16 || h.Inventory.VirtType != "kvm" || h.URL != "http://10.0.0.9:1" {
		t.Fatalf("after heartbeat: %+v", h)
	}

	e.clock.Advance(e.reg.DownAfter() - time.Second)
	h, _ = e.reg.Get(ctx, cred.AgentID)
	if !h.Up(e.clock.Now(), e.reg.DownAfter()) {
		t.Fatal("down before DownAfter")
	}
	e.clock.Advance(2 * time.Second)
	if h.Up(e.clock.Now(), e.reg.DownAfter()) {
		t.Fatal("up after DownAfter of silence")
	}

	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat status %d", r.StatusCode)
	}
	if err := e.reg.SetForcedDown(ctx, cred.AgentID, true); err != nil {
		t.Fatal(err)
	}
	h, _ = e.reg.Get(ctx, cred.AgentID)
	if h.Up(e.clock.Now(), e.reg.DownAfter()) || !h.ForcedDown {
		t.Fatal("forced-down host is up")
	}
	if err := e.reg.SetForcedDown(ctx, cred.AgentID, false); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetDisabled(ctx, cred.AgentID, false, "ignored"); err != nil {
		t.Fatal(err)
	}
	h, _ = e.reg.Get(ctx, cred.AgentID)
	if !h.Up(e.clock.Now(), e.reg.DownAfter()) || h.Disabled || h.DisabledReason != "" {
		t.Fatalf("after lifting marks: %+v", h)
	}
	if err := e.reg.SetForcedDown(ctx, "nope", true); !isKind(err, fault.NotFound) {
		t.Fatalf("SetForcedDown unknown: %v", err)
	}

	// A deleted host's credential is dead.
	if err := e.reg.Delete(ctx, cred.AgentID); err != nil {
		t.Fatal(err)
	}
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("deleted host heartbeat status %d", r.StatusCode)
	}
}

func TestSignatureRequiredOnEveryRoute(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	_, other := e.join(t, e.token(t), "node2", "http://10.0.0.2:1")
	e.images.content["img1"] = []byte("disk")
	content := []byte("snapshot")
	sum := sha256.Sum256(content)
	upload := agentapi.PathImages + "snap1/file?" + url.Values{"size": {"8"}, "sha256": {hex.EncodeToString(sum[:])}}.Encode()
	routes := []struct {
		method, path string
		body         []byte
		ok           int
	}{
		{"POST", agentapi.PathHeartbeat, mustJSON(agentapi.Heartbeat{}), http.StatusOK},
		{"POST", agentapi.PathEvents, mustJSON(agentapi.Events{Events: []agentapi.Event{{UUID: "u", Kind: "started"}}}), http.StatusNoContent},
		{"POST", agentapi.PathOperations + "op1", mustJSON(agentapi.Operation{ID: "op1", Status: agentapi.OpSucceeded}), http.StatusNoContent},
		{"GET", agentapi.PathImages + "img1/file", nil, http.StatusOK},
		{"PUT", upload, nil, http.StatusNoContent},
	}
	key, _ := agentapi.DecodeSecret(cred.Secret)
	otherKey, _ := agentapi.DecodeSecret(other.Secret)
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			body := rt.body
			if rt.method == "PUT" {
				body = content
			}
			newReq := func() *http.Request {
				req, _ := http.NewRequest(rt.method, e.srv.URL+rt.path, bytes.NewReader(body))
				return req
			}
			do := func(req *http.Request) int {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			signBody := body
			if rt.method == "PUT" {
				signBody = nil // streamed: the signed query carries the content hash
			}
			// Unsigned.
			if code := do(newReq()); code != http.StatusUnauthorized {
				t.Fatalf("unsigned: %d", code)
			}
			// Signed with another agent's secret under this agent's ID.
			req := newReq()
			agentapi.Sign(req, cred.AgentID, otherKey, signBody, time.Now())
			if code := do(req); code != http.StatusUnauthorized {
				t.Fatalf("wrong secret: %d", code)
			}
			// Stale timestamp.
			req = newReq()
			agentapi.Sign(req, cred.AgentID, key, signBody, time.Now().Add(-time.Hour))
			if code := do(req); code != http.StatusUnauthorized {
				t.Fatalf("stale: %d", code)
			}
			// Good, then replayed.
			req = newReq()
			agentapi.Sign(req, cred.AgentID, key, signBody, time.Now())
			replay := newReq()
			replay.Header = req.Header.Clone()
			if code := do(req); code != rt.ok {
				t.Fatalf("signed: %d, want %d", code, rt.ok)
			}
			if code := do(replay); code != http.StatusUnauthorized {
				t.Fatalf("replayed: %d", code)
			}
		})
	}
}

func TestSignedBodyIsBound(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	key, _ := agentapi.DecodeSecret(cred.Secret)
	req, _ := http.NewRequest("POST", e.srv.URL+agentapi.PathOperations+"op1",
		bytes.NewReader(mustJSON(agentapi.Operation{ID: "op1", Status: agentapi.OpFailed})))
	agentapi.Sign(req, cred.AgentID, key, mustJSON(agentapi.Operation{ID: "op1", Status: agentapi.OpSucceeded}), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d", resp.StatusCode)
	}
}

func TestListenerReceivesReports(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	e.rec.known = map[string]bool{"known": true}
	hb := agentapi.Heartbeat{Instances: []agentapi.InstanceState{{UUID: "known", PowerState: 1}, {UUID: "stray", PowerState: 1}}}
	r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb))
	var resp agentapi.HeartbeatResponse
	if err := decodeBody(r, &resp); err != nil || len(resp.Orphans) != 1 || resp.Orphans[0] != "stray" {
		t.Fatalf("orphans = %+v, %v", resp, err)
	}
	ev := agentapi.Events{Events: []agentapi.Event{{UUID: "known", Kind: agentapi.EventStopped, PowerState: agentapi.PowerShutdown}}}
	if r := e.signed(t, "POST", agentapi.PathEvents, cred.AgentID, cred.Secret, mustJSON(ev)); r.StatusCode != http.StatusNoContent {
		t.Fatalf("events: %d", r.StatusCode)
	}
	op := agentapi.Operation{ID: "op-1", UUID: "known", Kind: "spawn", Status: agentapi.OpSucceeded, PowerState: 1}
	if r := e.signed(t, "POST", agentapi.PathOperations+"op-1", cred.AgentID, cred.Secret, mustJSON(op)); r.StatusCode != http.StatusNoContent {
		t.Fatalf("operation: %d", r.StatusCode)
	}
	if r := e.signed(t, "POST", agentapi.PathOperations+"op-2", cred.AgentID, cred.Secret, mustJSON(op)); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("operation under another ID: %d", r.StatusCode)
	}
	e.rec.mu.Lock()
	if len(e.rec.heartbeats) != 1 || e.rec.heartbeats[0].AgentID != cred.AgentID || len(e.rec.events) != 1 || len(e.rec.ops) != 1 {
		t.Fatalf("listener saw %+v", e.rec)
	}
	e.rec.err = errors.New("database on fire")
	e.rec.mu.Unlock()
	// A failing listener makes the agent retry: 503, never a lost report.
	if r := e.signed(t, "POST", agentapi.PathOperations+"op-1", cred.AgentID, cred.Secret, mustJSON(op)); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("operation with failing listener: %d", r.StatusCode)
	}
	// A heartbeat is still stored.
	if r := e.signed(t, "POST", agentapi.PathHeartbeat, cred.AgentID, cred.Secret, mustJSON(hb)); r.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat with failing listener: %d", r.StatusCode)
	}
}

func TestImageTransfer(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	e.images.content["img1"] = []byte("base image bytes")
	r := e.signed(t, "GET", agentapi.PathImages+"img1/file", cred.AgentID, cred.Secret, nil)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || string(b) != "base image bytes" || r.ContentLength != 16 {
		t.Fatalf("download: %d %q", r.StatusCode, b)
	}
	if r := e.signed(t, "GET", agentapi.PathImages+"nope/file", cred.AgentID, cred.Secret, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("download of unknown image: %d", r.StatusCode)
	}

	upload := func(id string, declared, sent []byte) int {
		sum := sha256.Sum256(declared)
		q := url.Values{"size": {itoa(len(declared))}, "sha256": {hex.EncodeToString(sum[:])}}
		req, _ := http.NewRequest("PUT", e.srv.URL+agentapi.PathImages+id+"/file?"+q.Encode(), bytes.NewReader(sent))
		key, _ := agentapi.DecodeSecret(cred.Secret)
		agentapi.Sign(req, cred.AgentID, key, nil, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := upload("snap1", []byte("snapshot!"), []byte("snapshot!")); code != http.StatusNoContent {
		t.Fatalf("upload: %d", code)
	}
	if string(e.images.content["snap1"]) != "snapshot!" {
		t.Fatalf("stored %q", e.images.content["snap1"])
	}
	if code := upload("snap2", []byte("snapshot!"), []byte("snapsh0t!")); code != http.StatusBadRequest {
		t.Fatalf("tampered upload: %d", code)
	}
	if code := upload("snap3", []byte("snapshot!"), []byte("snapshot!+more")); code != http.StatusBadRequest {
		t.Fatalf("oversized upload: %d", code)
	}
	if _, ok := e.images.content["snap2"]; ok {
		t.Fatal("tampered upload committed")
	}
}

// TestStripPrefixMount checks that a mount which rewrites the URL (as
// http.StripPrefix does) still verifies signatures against what was sent.
func TestStripPrefixMount(t *testing.T) {
	e := newEnv(t)
	_, cred := e.join(t, e.token(t), "node1", "http://10.0.0.1:1")
	mux := http.NewServeMux()
	mux.Handle("/agents/", http.StripPrefix("/agents", e.reg.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := mustJSON(agentapi.Heartbeat{})
	req, _ := http.NewRequest("POST", srv.URL+agentapi.PathHeartbeat, bytes.NewReader(body))
	key, _ := agentapi.DecodeSecret(cred.Secret)
	agentapi.Sign(req, cred.AgentID, key, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat through StripPrefix: %d", resp.StatusCode)
	}
}
