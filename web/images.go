package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// imageRoutes declares the image pages; absent without an image service.
func (s *Server) imageRoutes(d chi.Router) {
	if s.imgs == nil {
		return
	}
	d.Get(views.ImagesURL, s.imageList)
	d.Get(views.ImagesURL+"/new", s.imageNew)
	d.Post(views.ImagesURL, s.imageUpload)
	d.Get(views.ImagesURL+"/{id}/edit", s.imageEdit)
	d.Post(views.ImagesURL+"/{id}", s.imageUpdate)
	d.Get(views.ImagesURL+"/{id}/delete", s.imageDeleteConfirm)
	d.Post(views.ImagesURL+"/{id}/delete", s.imageDelete)
}

// isImageUpload reports whether r is the streamed image upload, which
// neither the 64 KiB body limit nor the form-parsing CSRF check may touch
// (imageUpload checks the token itself).
func (s *Server) isImageUpload(r *http.Request) bool {
	if s.imgs == nil || r.Method != http.MethodPost || r.URL.Path != views.ImagesURL {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// imageList is GET /project/images.
func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	marker := r.URL.Query().Get("marker")
	const limit = 50
	imgs, _, err := s.imgs.ListImages(ctx, image.ListFilter{Limit: limit + 1, Marker: marker})
	if err != nil && marker != "" {
		marker = ""
		imgs, _, err = s.imgs.ListImages(ctx, image.ListFilter{Limit: limit + 1})
	}
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	v := viewerFrom(r)
	l := views.ImageList{CanWrite: canWrite(v), CanLaunch: canWrite(v) && s.comp != nil}
	if len(imgs) > limit {
		imgs = imgs[:limit]
		l.NextURL = views.ImagesURL + "?marker=" + url.QueryEscape(imgs[len(imgs)-1].ID)
	}
	if marker != "" {
		l.FirstURL = views.ImagesURL
	}
	for _, im := range imgs {
		size := "—"
		if im.Size != nil {
			size = views.Bytes(*im.Size)
		}
		name := im.Name
		if name == "" {
			name = "(no name)"
		}
		l.Rows = append(l.Rows, views.ImageRow{
			ID: im.ID, Name: name, Status: im.Status, Visibility: im.Visibility, DiskFormat: im.DiskFormat,
			Size: size, Owned: im.Owner == v.ProjectID || v.Creds.IsAdmin(), Protected: im.Protected,
		})
	}
	s.page(w, r, http.StatusOK, "Images", views.NavImages, views.ImagesPage(l))
}

func visibilityOptions(admin bool, selected string) []views.Option {
	vs := []string{"private", "shared", "community"}
	if admin || selected == "public" {
		vs = append(vs, "public")
	}
	opts := make([]views.Option, 0, len(vs))
	for _, v := range vs {
		opts = append(opts, views.Option{Value: v, Label: strings.ToUpper(v[:1]) + v[1:], Selected: v == selected})
	}
	return opts
}

func formatOptions(selected string) []views.Option {
	var opts []views.Option
	for _, f := range image.DiskFormats() {
		opts = append(opts, views.Option{Value: f, Label: f, Selected: f == selected})
	}
	return opts
}

func (s *Server) renderImageUpload(w http.ResponseWriter, r *http.Request, status int, f views.ImageForm) {
	admin := viewerFrom(r).Creds.IsAdmin()
	if f.Visibility == "" {
		f.Visibility = "private"
	}
	if f.DiskFormat == "" {
		f.DiskFormat = "qcow2"
	}
	f.Action, f.Cancel = views.ImagesURL, views.ImagesURL
	f.Visibilitys = visibilityOptions(admin, f.Visibility)
	f.Formats = formatOptions(f.DiskFormat)
	s.formPage(w, r, status, "Upload image", views.NavImages, views.ImagesURL, "Images", views.ImageUploadForm(f))
}

// imageNew is GET /project/images/new.
func (s *Server) imageNew(w http.ResponseWriter, r *http.Request) {
	s.renderImageUpload(w, r, http.StatusOK, views.ImageForm{})
}

// maxFieldBytes bounds each non-file field of the upload form.
const maxFieldBytes = 4 << 10

// imageUpload is POST /project/images: a multipart form whose fields come
// before the file. The fields are read first; the image is created; then
// the file part streams straight into the image service, which checks and
// caps it. Nothing holds the whole file in memory or on a temporary disk.
func (s *Server) imageUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := views.ImageForm{}
	if !s.isImageUpload(r) {
		f.Error = "Choose a file to upload."
		s.renderImageUpload(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	headerCSRF := r.Header.Get(csrfHeader) != "" // verifyCSRF checked it
	mr, err := r.MultipartReader()
	if err != nil {
		s.errorPage(w, r, fault.Invalidf("The upload could not be read."))
		return
	}
	fields := map[string]string{}
	var filePart io.Reader
	var fileName string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.errorPage(w, r, fault.Invalidf("The upload could not be read."))
			return
		}
		if p.FormName() == "file" {
			filePart, fileName = p, p.FileName()
			break
		}
		b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
		if err != nil || len(b) > maxFieldBytes {
			s.errorPage(w, r, fault.Invalidf("A form field is too long."))
			return
		}
		fields[p.FormName()] = string(b)
	}
	if !headerCSRF && !tokensEqual(s.sm.GetString(ctx, keyCSRF), fields[csrfField]) {
		s.log.WarnContext(ctx, "dashboard request refused: CSRF token missing or wrong", "method", r.Method, "path", r.URL.Path)
		s.errorPage(w, r, errCSRF)
		return
	}
	f.Name = strings.TrimSpace(fields["name"])
	f.Visibility = fields["visibility"]
	f.DiskFormat = fields["disk_format"]
	if f.Name == "" && fileName != "" {
		f.Name = strings.TrimSuffix(fileName, "."+f.DiskFormat)
	}
	requireName(&f.Form, f.Name, "image")
	if f.Visibility == "public" && !viewerFrom(r).Creds.IsAdmin() {
		f.SetError("visibility", "Only administrators can make an image public.")
	}
	if filePart == nil || fileName == "" {
		f.SetError("file", "Choose a file to upload.")
	}
	if !f.Valid() {
		s.renderImageUpload(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	im, err := s.imgs.CreateImage(ctx, image.Image{Name: f.Name, Visibility: f.Visibility, DiskFormat: f.DiskFormat, ContainerFormat: "bare"})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "visibility", "disk_format")
		s.renderImageUpload(w, r, formStatus(err), f)
		return
	}
	if _, err := s.imgs.Upload(ctx, im.ID, filePart, -1); err != nil {
		// Failure cleans up: an image without its data is no use to anyone.
		if derr := s.imgs.DeleteImage(context.WithoutCancel(ctx), im.ID); derr != nil && !errors.Is(derr, context.Canceled) {
			s.log.WarnContext(ctx, "delete image after a failed upload", "image_id", im.ID, "err", derr)
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		s.formFault(r, &f.Form, err, "file")
		s.renderImageUpload(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.ImagesURL, "Image "+quoted(f.Name)+" uploaded.")
}

func (s *Server) renderImageEdit(w http.ResponseWriter, r *http.Request, status int, f views.ImageForm) {
	f.Action, f.Cancel = views.Path(views.ImagesURL, f.ID), views.ImagesURL
	f.Visibilitys = visibilityOptions(viewerFrom(r).Creds.IsAdmin(), f.Visibility)
	s.formPage(w, r, status, "Edit image", views.NavImages, views.ImagesURL, "Images", views.ImageEditForm(f))
}

// imageEdit is GET /project/images/{id}/edit.
func (s *Server) imageEdit(w http.ResponseWriter, r *http.Request) {
	im, err := s.imgs.GetImage(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.renderImageEdit(w, r, http.StatusOK, views.ImageForm{ID: im.ID, Name: im.Name, Visibility: im.Visibility})
}

// imageUpdate is POST /project/images/{id}.
func (s *Server) imageUpdate(w http.ResponseWriter, r *http.Request) {
	f := views.ImageForm{ID: urlID(r), Name: field(r, "name"), Visibility: field(r, "visibility")}
	requireName(&f.Form, f.Name, "image")
	switch f.Visibility {
	case "private", "shared", "community":
	case "public":
		if !viewerFrom(r).Creds.IsAdmin() {
			f.SetError("visibility", "Only administrators can make an image public.")
		}
	default:
		f.SetError("visibility", "Choose a visibility.")
	}
	if !f.Valid() {
		s.renderImageEdit(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	im, err := s.imgs.UpdateImage(r.Context(), f.ID, []image.Change{
		{Op: "replace", Path: "name", Value: f.Name},
		{Op: "replace", Path: "visibility", Value: f.Visibility},
	})
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "visibility")
		s.renderImageEdit(w, r, formStatus(err), f)
		return
	}
	s.done(w, r, views.ImagesURL, "Image "+quoted(im.Name)+" saved.")
}

func imageDeleteConfirmation(id, name string) views.Confirm {
	return views.Confirm{
		Form:    views.Form{Action: views.Path(views.ImagesURL, id, "delete"), Cancel: views.ImagesURL},
		Title:   "Delete image",
		Lead:    "Delete the image",
		Subject: name,
		Detail:  "Instances built from it keep running, but no new instance can use it. This cannot be undone.",
		Button:  "Delete image",
		Danger:  true,
	}
}

// imageDeletion is an image page's delete confirmation and action: the
// project's Images page and the admin's All images share it.
type imageDeletion struct {
	nav, title, back string
	confirmation     func(id, name string) views.Confirm
}

func (s *Server) confirmImageDelete(w http.ResponseWriter, r *http.Request, d imageDeletion) {
	im, err := s.imgs.GetImage(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.confirm(w, r, http.StatusOK, d.nav, d.title, d.confirmation(im.ID, im.Name))
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request, d imageDeletion) {
	id := urlID(r)
	if err := s.imgs.DeleteImage(r.Context(), id); err != nil {
		name := id
		if im, gerr := s.imgs.GetImage(r.Context(), id); gerr == nil {
			name = im.Name
		}
		s.confirmFailed(w, r, d.nav, d.title, d.confirmation(id, name), err)
		return
	}
	s.done(w, r, d.back, "Image deleted.")
}

var projectImageDeletion = imageDeletion{nav: views.NavImages, title: "Images", back: views.ImagesURL,
	confirmation: imageDeleteConfirmation}

// imageDeleteConfirm is GET /project/images/{id}/delete.
func (s *Server) imageDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	s.confirmImageDelete(w, r, projectImageDeletion)
}

// imageDelete is POST /project/images/{id}/delete.
func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) {
	s.deleteImage(w, r, projectImageDeletion)
}
