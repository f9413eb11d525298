package compute

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

func (a *apiHandler) keypairRoutes(r chi.Router) {
	r.Get("/os-keypairs", a.listKeypairs)
	r.Post("/os-keypairs", a.createKeypair)
	r.Get("/os-keypairs/{name}", a.showKeypair)
	r.Delete("/os-keypairs/{name}", a.deleteKeypair)
}

// keypairUser is the user_id query parameter, honoured from microversion 2.10.
func keypairUser(r *http.Request) string {
	if version(r).atLeast(10) {
		return r.URL.Query().Get("user_id")
	}
	return ""
}

func keypairView(r *http.Request, k *Keypair, full bool) map[string]any {
	m := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if version(r).atLeast(2) {
		m["type"] = k.Type
	}
	if full {
		m["user_id"], m["id"], m["created_at"] = k.UserID, k.ID, apiTimeMicro(k.CreatedAt)
		m["deleted"], m["deleted_at"], m["updated_at"] = false, nil, nil
	}
	return m
}

func (a *apiHandler) listKeypairs(w http.ResponseWriter, r *http.Request) {
	limit, marker := 0, ""
	if version(r).atLeast(35) {
		var err error
		if limit, err = queryInt(r, "limit"); err != nil {
			a.fail(w, r, err)
			return
		}
		marker = r.URL.Query().Get("marker")
	}
	ks, err := a.s.ListKeypairs(r.Context(), keypairUser(r), limit, marker)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(ks))
	for i := range ks {
		out = append(out, map[string]any{"keypair": keypairView(r, &ks[i], false)})
	}
	body := map[string]any{"keypairs": out}
	if len(ks) > 0 {
		if l := a.nextLink(r, "os-keypairs", len(ks), limit, ks[len(ks)-1].Name); l != nil {
			body["keypairs_links"] = l
		}
	}
	rest.JSON(w, http.StatusOK, body)
}

func (a *apiHandler) createKeypair(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Keypair *struct {
			Name      string  `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      string  `json:"type"`
			UserID    string  `json:"user_id"`
		} `json:"keypair"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := requireKey(body.Keypair != nil, "keypair"); err != nil {
		a.fail(w, r, err)
		return
	}
	v := version(r)
	kc := KeypairCreate{Name: body.Keypair.Name, ExtendedNames: v.atLeast(92)}
	if pk := body.Keypair.PublicKey; pk != nil {
		// A public_key given empty is an import of nothing, as Nova sees it.
		if strings.TrimSpace(*pk) == "" {
			a.fail(w, r, fault.Invalidf("Keypair data is invalid: failed to generate fingerprint"))
			return
		}
		kc.PublicKey = *pk
	}
	if v.atLeast(2) {
		kc.Type = body.Keypair.Type
	}
	if v.atLeast(10) {
		kc.UserID = body.Keypair.UserID
	}
	k, err := a.s.CreateKeypair(r.Context(), kc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := keypairView(r, k, false)
	m["user_id"] = k.UserID
	if k.PrivateKey != "" {
		m["private_key"] = k.PrivateKey
	}
	status := http.StatusOK
	if v.atLeast(2) {
		status = http.StatusCreated
	}
	rest.JSON(w, status, map[string]any{"keypair": m})
}

func (a *apiHandler) showKeypair(w http.ResponseWriter, r *http.Request) {
	k, err := a.s.GetKeypair(r.Context(), keypairUser(r), chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rest.JSON(w, http.StatusOK, map[string]any{"keypair": keypairView(r, k, true)})
}

func (a *apiHandler) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	if err := a.s.DeleteKeypair(r.Context(), keypairUser(r), chi.URLParam(r, "name")); err != nil {
		a.fail(w, r, err)
		return
	}
	if version(r).atLeast(2) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
