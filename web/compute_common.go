package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/views"
)

// This file holds what the compute and image pages share: the role check
// that decides which buttons to offer, the actions an instance's state
// allows, and the mapping of servers to rows.

// canWrite reports whether the viewer holds a role that may change
// project resources (member, or admin). It only decides which buttons are
// offered: the services check policy on every call regardless.
func canWrite(v *viewer) bool {
	if v == nil || v.Creds == nil {
		return false
	}
	return v.Creds.IsAdmin() || slices.Contains(v.Creds.Roles, "member")
}

// powerStateNames are Nova's power_state values.
var powerStateNames = map[int]string{0: "No state", 1: "Running", 3: "Paused", 4: "Shut down", 6: "Crashed", 7: "Suspended"}

func powerState(p int) string {
	if n, ok := powerStateNames[p]; ok {
		return n
	}
	return "Unknown"
}

// allowedActions are the actions a server's state allows, in menu order.
// Admins may act on locked servers; others can only unlock them (a lock an
// admin set refuses them, which the service says).
func allowedActions(srv *compute.Server, admin bool) []string {
	var acts []string
	status := srv.Status()
	locked := srv.Locked && !admin
	busy := srv.TaskState != ""
	if !locked && !busy {
		switch status {
		case "ACTIVE":
			acts = append(acts, "console", "stop", "reboot", "pause", "suspend", "snapshot", "resize", "rebuild")
		case "SHUTOFF":
			acts = append(acts, "start", "snapshot", "resize", "rebuild")
		case "PAUSED":
			acts = append(acts, "unpause")
		case "SUSPENDED":
			acts = append(acts, "resume")
		case "VERIFY_RESIZE":
			acts = append(acts, "confirm-resize", "revert-resize")
		case "ERROR":
			acts = append(acts, "rebuild")
		}
	}
	if srv.Locked {
		acts = append(acts, "unlock")
	} else {
		acts = append(acts, "lock")
	}
	if !locked {
		acts = append(acts, "delete")
	}
	return acts
}

// actionAllowed reports whether action is one the row would offer.
func actionAllowed(srv *compute.Server, admin bool, action string) bool {
	return slices.Contains(allowedActions(srv, admin), action)
}

// imageNames resolves image IDs to names, once each; an image the viewer
// cannot see (or a missing image service) shows its ID.
type imageNames struct {
	s     *Server
	ctx   context.Context
	cache map[string]string
}

func (s *Server) imageNamer(ctx context.Context) *imageNames {
	return &imageNames{s: s, ctx: ctx, cache: map[string]string{}}
}

func (n *imageNames) name(id string) string {
	if id == "" {
		return "—"
	}
	if v, ok := n.cache[id]; ok {
		return v
	}
	name := id
	if n.s.imgs != nil {
		if im, err := n.s.imgs.GetImage(n.ctx, id); err == nil && im.Name != "" {
			name = im.Name
		}
	}
	n.cache[id] = name
	return name
}

// instanceRow maps a server to its row.
func (s *Server) instanceRow(r *http.Request, srv *compute.Server, names *imageNames, back string) views.InstanceRow {
	v := viewerFrom(r)
	row := views.InstanceRow{
		ID:         srv.ID,
		Name:       srv.Name,
		Image:      names.name(srv.ImageRef),
		Flavor:     srv.Flavor.Name,
		KeyName:    srv.KeyName,
		Status:     srv.Status(),
		PowerState: powerState(srv.PowerState),
		TaskState:  srv.TaskState,
		Age:        views.Age(s.now(), srv.CreatedAt),
		Locked:     srv.Locked,
		Back:       back,
		Admin:      back == views.AllInstancesURL,
		Project:    srv.ProjectID,
		Host:       srv.Node,
	}
	if row.Name == "" {
		row.Name = srv.ID
	}
	if s.nets != nil {
		row.Addresses = s.instanceAddresses(r, srv)
	}
	if canWrite(v) {
		row.Actions = allowedActions(srv, v.Creds.IsAdmin())
		// Floating IPs are the project's: offered on its own instances,
		// not on other projects' in the admin list.
		if s.nets != nil && srv.ProjectID == v.ProjectID && !srv.Locked && srv.TaskState == "" &&
			(srv.Status() == "ACTIVE" || srv.Status() == "SHUTOFF") {
			n := len(row.Actions)
			if n > 0 && row.Actions[n-1] == "delete" {
				row.Actions = append(row.Actions[:n-1], "floating-ip", "delete")
			} else {
				row.Actions = append(row.Actions, "floating-ip")
			}
		}
	}
	return row
}

// safeBack is where an instance action returns: one of the instance pages,
// never another site.
func safeBack(b string) string {
	if b == views.AllInstancesURL || b == views.InstancesURL {
		return b
	}
	if strings.HasPrefix(b, views.InstancesURL+"/") && !strings.ContainsAny(b, "\\?#") && !strings.Contains(b, "//") {
		if u, err := url.Parse(b); err == nil && u.Host == "" && u.Scheme == "" {
			return b
		}
	}
	return views.InstancesURL
}
