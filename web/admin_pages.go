package web

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/views"
)

// adminPageRoutes declares Admin → Overview, Images, Networks, Routers,
// Floating IPs and Quotas (inside the requireAdmin group); each page is
// absent without the service it shows.
func (s *Server) adminPageRoutes(d chi.Router) {
	d.Get("/admin", s.adminHome)
	if s.comp != nil {
		d.Get(views.AdminOverviewURL, s.adminOverview)
	}
	if s.imgs != nil {
		d.Get(views.AdminImagesURL, s.adminImageList)
		d.Get(views.AdminImagesURL+"/{id}/delete", s.adminImageDeleteConfirm)
		d.Post(views.AdminImagesURL+"/{id}/delete", s.adminImageDelete)
	}
	if s.comp != nil || s.nets != nil {
		d.Get(views.AdminQuotasURL, s.adminQuotas)
		d.Post(views.AdminQuotasURL+"/{project}/{service}", s.adminQuotaUpdate)
		d.Get(views.AdminQuotasURL+"/{project}/{service}/reset", s.adminQuotaReset)
		d.Post(views.AdminQuotasURL+"/{project}/{service}/reset", s.adminQuotaReset)
	}
	s.adminNetworkRoutes(d)
}

// adminHome is GET /admin: the overview, or the system information when
// there is no compute service to sum up.
func (s *Server) adminHome(w http.ResponseWriter, r *http.Request) {
	to := views.AdminOverviewURL
	if s.comp == nil {
		to = "/admin/system"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// adminOverview is GET /admin/overview: the cloud's totals and each
// hypervisor's allocation.
func (s *Server) adminOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	hs, err := s.comp.ListHypervisors(ctx, "")
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	st, err := s.comp.HypervisorStatistics(ctx)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	o := views.AdminOverview{Totals: views.CloudTotals{
		Hypervisors: st.Count, VCPUsUsed: st.Used.VCPUs, VCPUs: st.VCPUs, RAMUsed: st.Used.MemoryMB, RAM: st.MemoryMB,
		DiskUsed: st.Used.DiskGB, Disk: st.LocalGB, RunningVMs: st.RunningVMs,
	}}
	for _, h := range hs {
		if h.Up {
			o.Totals.Up++
		}
		o.Hypervisors = append(o.Hypervisors, views.HypervisorRow{
			Name: h.Hostname, Type: h.Type, IP: h.HostIP, Up: h.Up, Enabled: h.Enabled,
			VCPUsUsed: h.Used.VCPUs, VCPUs: h.VCPUs, RAMUsed: h.Used.MemoryMB, RAM: h.MemoryMB,
			DiskUsed: h.Used.DiskGB, Disk: h.LocalGB, RunningVMs: h.RunningVMs,
		})
	}
	slices.SortFunc(o.Hypervisors, func(a, b views.HypervisorRow) int { return byName(a.Name, b.Name) })
	s.page(w, r, http.StatusOK, "Admin overview", views.NavAdminOverview, views.AdminOverviewPage(o))
}

// adminImageList is GET /admin/images: every image of every project,
// community ones included, with the owning project's name.
func (s *Server) adminImageList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	marker := r.URL.Query().Get("marker")
	const limit = 50
	list := func(marker string) ([]image.Image, error) {
		imgs, _, err := s.imgs.ListImages(ctx, image.ListFilter{Visibility: "all", MemberStatus: "all", Limit: limit + 1, Marker: marker})
		return imgs, err
	}
	imgs, err := list(marker)
	if err != nil && marker != "" {
		// A stale marker (the image is gone) restarts from the first page.
		marker = ""
		imgs, err = list("")
	}
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var l views.AdminImageList
	if len(imgs) > limit {
		imgs = imgs[:limit]
		l.NextURL = views.AdminImagesURL + "?marker=" + url.QueryEscape(imgs[len(imgs)-1].ID)
	}
	if marker != "" {
		l.FirstURL = views.AdminImagesURL
	}
	var projects map[string]string
	if len(imgs) > 0 {
		projects = s.projectNames(ctx)
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
		owner := "—"
		if im.Owner != "" {
			owner = nameOr(projects, im.Owner)
		}
		l.Rows = append(l.Rows, views.AdminImageRow{
			ID: im.ID, Name: name, Owner: owner, Status: im.Status, Visibility: im.Visibility,
			DiskFormat: im.DiskFormat, Size: size, Protected: im.Protected,
		})
	}
	s.page(w, r, http.StatusOK, "All images", views.NavAdminImages, views.AdminImagesPage(l))
}

func adminImageDeleteConfirmation(id, name string) views.Confirm {
	c := imageDeleteConfirmation(id, name)
	c.Action, c.Cancel = views.Path(views.AdminImagesURL, id, "delete"), views.AdminImagesURL
	c.Detail = "It belongs to a project that may still use it. " + c.Detail
	return c
}

var adminImageDeletion = imageDeletion{nav: views.NavAdminImages, title: "All images", back: views.AdminImagesURL,
	confirmation: adminImageDeleteConfirmation}

// adminImageDeleteConfirm is GET /admin/images/{id}/delete.
func (s *Server) adminImageDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	s.confirmImageDelete(w, r, adminImageDeletion)
}

// adminImageDelete is POST /admin/images/{id}/delete.
func (s *Server) adminImageDelete(w http.ResponseWriter, r *http.Request) {
	s.deleteImage(w, r, adminImageDeletion)
}
