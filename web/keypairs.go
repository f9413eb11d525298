package web

import (
	"net/http"
	"net/url"
	"regexp"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/views"
)

// keypairList is GET /project/key-pairs.
func (s *Server) keypairList(w http.ResponseWriter, r *http.Request) {
	kps, err := s.comp.ListKeypairs(r.Context(), "", 0, "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	l := views.KeyPairList{CanWrite: canWrite(viewerFrom(r))}
	for _, k := range kps {
		l.Rows = append(l.Rows, views.KeyPairRow{Name: k.Name, Type: k.Type, Fingerprint: k.Fingerprint, Created: k.CreatedAt})
	}
	s.page(w, r, http.StatusOK, "Key pairs", views.NavKeyPairs, views.KeyPairsPage(l))
}

func (s *Server) renderKeypairForm(w http.ResponseWriter, r *http.Request, status int, f views.KeyPairForm) {
	title := "Create key pair"
	if f.Import {
		title = "Import public key"
	}
	f.Cancel = views.KeyPairsURL
	s.formPage(w, r, status, title, views.NavKeyPairs, views.KeyPairsURL, "Key pairs", views.KeyPairFormView(f))
}

// keypairNew is GET /project/key-pairs/new.
func (s *Server) keypairNew(w http.ResponseWriter, r *http.Request) {
	s.renderKeypairForm(w, r, http.StatusOK, views.KeyPairForm{})
}

// keypairImportForm is GET /project/key-pairs/import.
func (s *Server) keypairImportForm(w http.ResponseWriter, r *http.Request) {
	s.renderKeypairForm(w, r, http.StatusOK, views.KeyPairForm{Import: true})
}

var pemFileUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// keypairCreate is POST /project/key-pairs: it generates a key pair and
// answers with its private key as a download. The private key exists only
// in this response: the service returns it once and nothing stores it.
func (s *Server) keypairCreate(w http.ResponseWriter, r *http.Request) {
	f := views.KeyPairForm{Name: field(r, "name")}
	requireName(&f.Form, f.Name, "key pair")
	if !f.Valid() {
		s.renderKeypairForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	kp, err := s.comp.CreateKeypair(r.Context(), compute.KeypairCreate{Name: f.Name})
	if err != nil {
		s.formFault(r, &f.Form, err, "name")
		s.renderKeypairForm(w, r, formStatus(err), f)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-pem-file")
	h.Set("Content-Disposition", `attachment; filename="`+pemFileName(kp.Name)+`"`)
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(kp.PrivateKey))
}

// pemFileName is the file a key pair's private key downloads as.
func pemFileName(name string) string {
	file := pemFileUnsafe.ReplaceAllString(name, "_")
	if file == "" || file == "." || file == ".." {
		file = "key"
	}
	return file + ".pem"
}

// keypairImport is POST /project/key-pairs/import.
func (s *Server) keypairImport(w http.ResponseWriter, r *http.Request) {
	f := views.KeyPairForm{Import: true, Name: field(r, "name"), PublicKey: field(r, "public_key")}
	requireName(&f.Form, f.Name, "key pair")
	if f.PublicKey == "" {
		f.SetError("public_key", "Paste the public key.")
	}
	if !f.Valid() {
		s.renderKeypairForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	kp, err := s.comp.CreateKeypair(r.Context(), compute.KeypairCreate{Name: f.Name, PublicKey: f.PublicKey})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "public_key")
		s.renderKeypairForm(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.KeyPairsURL, "Key pair "+quoted(kp.Name)+" imported.")
}

func keypairName(r *http.Request) string {
	n := chi.URLParam(r, "name")
	if u, err := url.PathUnescape(n); err == nil {
		return u
	}
	return n
}

func keypairDeleteConfirmation(name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.KeyPairsURL, name, "delete"), Cancel: views.KeyPairsURL},
		Title:   "Delete key pair",
		Lead:    "Delete the key pair",
		Subject: name,
		Detail:  "Instances that already have the key keep it; new instances cannot use it.",
		Button:  "Delete key pair",
		Danger:  true,
	}
}

// keypairDeleteConfirm is GET /project/key-pairs/{name}/delete.
func (s *Server) keypairDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	name := keypairName(r)
	if _, err := s.comp.GetKeypair(r.Context(), "", name); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, views.NavKeyPairs, "Key pairs", keypairDeleteConfirmation(name))
}

// keypairDelete is POST /project/key-pairs/{name}/delete.
func (s *Server) keypairDelete(w http.ResponseWriter, r *http.Request) {
	name := keypairName(r)
	if err := s.comp.DeleteKeypair(r.Context(), "", name); err != nil {
		s.confirmFailed(w, r, views.NavKeyPairs, "Key pairs", keypairDeleteConfirmation(name), err)
		return
	}
	s.done(w, r, views.KeyPairsURL, "Key pair "+quoted(name)+" deleted.")
}
