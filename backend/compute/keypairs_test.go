package compute_test

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func ed25519Line(t *testing.T) (string, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(pk.Marshal())
	var parts []string
	for _, b := range sum {
		parts = append(parts, fmt.Sprintf("%02x", b))
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " me@laptop", strings.Join(parts, ":")
}

func TestKeypairService(t *testing.T) {
	e := newEnvWith(t, envOptions{quotas: compute.QuotaLimits{compute.QuotaKeyPairs: 3}})
	line, fp := ed25519Line(t)
	cases := []struct {
		name string
		kc   compute.KeypairCreate
		kind fault.Kind
	}{
		{"import", compute.KeypairCreate{Name: "laptop", PublicKey: line}, -1},
		{"generate", compute.KeypairCreate{Name: "gen key_1"}, -1},
		{"duplicate", compute.KeypairCreate{Name: "laptop", PublicKey: line}, fault.Conflict},
		{"bad key", compute.KeypairCreate{Name: "bad", PublicKey: "ssh-rsa AAAA not-a-key"}, fault.Invalid},
		{"unsafe name", compute.KeypairCreate{Name: "a/b"}, fault.Invalid},
		{"dot before 2.92", compute.KeypairCreate{Name: "a.b", PublicKey: line}, fault.Invalid},
		{"dot at 2.92", compute.KeypairCreate{Name: "a.b", PublicKey: line, ExtendedNames: true}, -1},
		{"over quota", compute.KeypairCreate{Name: "fourth", PublicKey: line}, fault.OverQuota},
		{"other user", compute.KeypairCreate{Name: "x", PublicKey: line, UserID: "someone-else"}, fault.Forbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := e.svc.CreateKeypair(e.alice.Ctx, c.kc)
			if c.kind == -1 {
				if err != nil {
					t.Fatal(err)
				}
				if c.kc.PublicKey == "" && (!strings.HasPrefix(k.PrivateKey, "-----BEGIN RSA PRIVATE KEY-----") ||
					!strings.HasSuffix(k.PublicKey, "Generated-by-Nova")) {
					t.Fatalf("generated key pair %+v", k)
				}
				if c.kc.PublicKey != "" && k.Fingerprint != fp {
					t.Fatalf("fingerprint %s, want %s", k.Fingerprint, fp)
				}
				return
			}
			if !fault.Is(err, c.kind) {
				t.Fatalf("got %v, want kind %v", err, c.kind)
			}
		})
	}
	// The generated private key matches its public key.
	k, err := e.svc.GetKeypair(e.alice.Ctx, "", "gen key_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey)); err != nil {
		t.Fatalf("generated public key does not parse: %v", err)
	}
	// Key pairs are per user: bob sees none of alice's.
	if ks, _ := e.svc.ListKeypairs(e.bob.Ctx, "", 0, ""); len(ks) != 0 {
		t.Fatalf("bob sees %v", ks)
	}
	if _, err := e.svc.GetKeypair(e.bob.Ctx, "", "laptop"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("bob gets alice's key: %v", err)
	}
	// An admin may look at alice's.
	if ks, err := e.svc.ListKeypairs(e.admin.Ctx, e.alice.ID, 0, ""); err != nil || len(ks) != 3 {
		t.Fatalf("admin lists alice's keys: %v %v", ks, err)
	}
	if err := e.svc.DeleteKeypair(e.alice.Ctx, "", "laptop"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteKeypair(e.alice.Ctx, "", "laptop"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestKeypairAPI(t *testing.T) {
	e := newEnv(t)
	line, fp := ed25519Line(t)
	r := e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "k1", "public_key": line}}).want(http.StatusOK)
	if k := r.obj("keypair"); k["fingerprint"] != fp || k["user_id"] != e.alice.ID || k["type"] != nil {
		t.Fatalf("imported at 2.1: %v", k)
	}
	r = e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "k2"}}, microversion("2.10")...).want(http.StatusCreated)
	if k := r.obj("keypair"); k["private_key"] == nil || k["type"] != "ssh" {
		t.Fatalf("generated at 2.10: %v", k)
	}
	r = e.do("GET", "/os-keypairs", e.alice.Token, nil, microversion("2.35")...).want(http.StatusOK)
	if l := r.list("keypairs"); len(l) != 2 || l[0]["keypair"].(map[string]any)["name"] != "k1" {
		t.Fatalf("list %s", r.raw)
	}
	r = e.do("GET", "/os-keypairs?limit=1", e.alice.Token, nil, microversion("2.35")...).want(http.StatusOK)
	if len(r.list("keypairs")) != 1 || r.body["keypairs_links"] == nil {
		t.Fatalf("paged list %s", r.raw)
	}
	r = e.do("GET", "/os-keypairs/k1", e.alice.Token, nil).want(http.StatusOK)
	if k := r.obj("keypair"); k["id"] == nil || k["deleted"] != false || k["user_id"] != e.alice.ID {
		t.Fatalf("show %v", k)
	}
	e.do("GET", "/os-keypairs/k1", e.bob.Token, nil).want(http.StatusNotFound)
	e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "k1", "public_key": line}}).want(http.StatusConflict)
	e.do("POST", "/os-keypairs", e.alice.Token, map[string]any{"keypair": map[string]any{"name": "bad", "public_key": "nope"}}).want(http.StatusBadRequest)
	e.do("POST", "/os-keypairs", e.alice.Token, `{"keypair": `).want(http.StatusBadRequest)
	e.do("DELETE", "/os-keypairs/k1", e.alice.Token, nil).want(http.StatusAccepted)
	e.do("DELETE", "/os-keypairs/k2", e.alice.Token, nil, microversion("2.2")...).want(http.StatusNoContent)
	e.do("DELETE", "/os-keypairs/k2", e.alice.Token, nil).want(http.StatusNotFound)
}
