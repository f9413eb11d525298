package web

import (
	"fmt"
	"net/http"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/views"
)

// flavorLabel describes a flavor in a select.
func flavorLabel(fl *compute.Flavor) string {
	return describeFlavor(fl.Name, fl.VCPUs, fl.MemoryMB, fl.RootGB)
}

func describeFlavor(name string, vcpus, ramMB, diskGB int64) string {
	return fmt.Sprintf("%s — %d vCPU, %d MiB RAM, %d GiB disk", name, vcpus, ramMB, diskGB)
}

// resizeForm fills f's choices for server srv: every flavor but its own.
func (s *Server) resizeForm(r *http.Request, srv *compute.Server, f *views.ResizeForm) {
	// The server's own copy: its flavor may have been deleted since.
	f.Current = describeFlavor(srv.Flavor.Name, srv.Flavor.VCPUs, srv.Flavor.MemoryMB, srv.Flavor.RootGB)
	f.Flavors = []views.Option{{Value: "", Label: "Choose a flavor", Selected: f.Flavor == ""}}
	flavors, err := s.comp.ListFlavors(r.Context(), compute.FlavorFilter{SortKey: "memory_mb"})
	if err != nil {
		s.log.WarnContext(r.Context(), "list flavors for resize", "err", err)
	}
	for i := range flavors {
		fl := &flavors[i]
		if fl.ID == srv.Flavor.ID {
			continue
		}
		f.Flavors = append(f.Flavors, views.Option{Value: fl.ID, Label: flavorLabel(fl), Selected: fl.ID == f.Flavor})
	}
}

// resizeDialog is GET /project/instances/{id}/resize.
func (s *Server) resizeDialog(w http.ResponseWriter, r *http.Request) {
	srv, err := s.comp.GetServer(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := safeBack(r.URL.Query().Get("back"))
	f := views.ResizeForm{Form: views.Form{Cancel: back}, Back: back}
	s.resizeForm(r, srv, &f)
	s.formPage(w, r, http.StatusOK, "Resize instance", views.NavInstances, back, "Instances", views.ResizeFormView(srv.ID, f))
}

// resize is POST /project/instances/{id}/resize.
func (s *Server) resize(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	srv, err := s.comp.GetServer(r.Context(), id)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := safeBack(r.PostFormValue("back"))
	f := views.ResizeForm{Form: views.Form{Cancel: back}, Back: back, Flavor: field(r, "flavor")}
	status := http.StatusUnprocessableEntity
	if f.Flavor == "" {
		f.SetError("flavor", "Choose the flavor to resize to.")
	} else if err := s.comp.ResizeServer(r.Context(), id, f.Flavor); err != nil {
		s.formFault(r, &f.Form, err)
		status = formStatus(err)
	} else {
		s.done(w, r, back, "Resizing "+quoted(srv.Name)+
			": confirm the resize when it works, or revert it.")
		return
	}
	s.resizeForm(r, srv, &f)
	s.formPage(w, r, status, "Resize instance", views.NavInstances, back, "Instances", views.ResizeFormView(id, f))
}

// rebuildForm fills f's image choices: the active images and snapshots
// the viewer may use.
func (s *Server) rebuildForm(r *http.Request, f *views.RebuildForm) {
	if s.imgs == nil {
		return
	}
	imgs, _, err := s.imgs.ListImages(r.Context(), image.ListFilter{Statuses: []string{"active"}, Limit: 1000,
		SortKeys: []string{"name"}, SortDirs: []string{"asc"}})
	if err != nil {
		s.log.WarnContext(r.Context(), "list images for rebuild", "err", err)
	}
	var plain, snaps []views.Option
	for i := range imgs {
		im := &imgs[i]
		o := views.Option{Value: im.ID, Label: imageLabel(im), Selected: im.ID == f.Image}
		if im.Properties["image_type"] == "snapshot" {
			snaps = append(snaps, o)
		} else {
			plain = append(plain, o)
		}
	}
	f.Images = []views.OptionGroup{{Label: "Images", Options: plain}, {Label: "Snapshots", Options: snaps}}
}

// rebuildDialog is GET /project/instances/{id}/rebuild.
func (s *Server) rebuildDialog(w http.ResponseWriter, r *http.Request) {
	srv, err := s.comp.GetServer(r.Context(), urlID(r))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	back := safeBack(r.URL.Query().Get("back"))
	f := views.RebuildForm{Form: views.Form{Cancel: back}, Back: back, Name: srv.Name, Image: srv.ImageRef}
	s.rebuildForm(r, &f)
	s.formPage(w, r, http.StatusOK, "Rebuild instance", views.NavInstances, back, "Instances", views.RebuildFormView(srv.ID, f))
}

// rebuild is POST /project/instances/{id}/rebuild.
func (s *Server) rebuild(w http.ResponseWriter, r *http.Request) {
	id := urlID(r)
	back := safeBack(r.PostFormValue("back"))
	f := views.RebuildForm{Form: views.Form{Cancel: back}, Back: back, Name: field(r, "name"), Image: field(r, "image")}
	requireName(&f.Form, f.Name, "instance")
	if f.Image == "" {
		f.SetError("image", "Choose the image to rebuild from.")
	}
	status := http.StatusUnprocessableEntity
	if f.Valid() {
		name := f.Name
		if _, _, err := s.comp.RebuildServer(r.Context(), id, compute.ServerRebuild{ImageRef: f.Image, Name: &name}); err != nil {
			s.formFault(r, &f.Form, err)
			status = formStatus(err)
		} else {
			s.done(w, r, back, "Rebuilding "+quoted(name)+".")
			return
		}
	}
	s.rebuildForm(r, &f)
	s.formPage(w, r, status, "Rebuild instance", views.NavInstances, back, "Instances", views.RebuildFormView(id, f))
}
