package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// The drawing's geometry, in SVG user units: networks are bars in columns
// colW apart under a label band; each router or instance gets a row of its
// own, its box just right of the leftmost network it is on, with a
// horizontal line to each of its networks.
const (
	topoFirstX = 100
	topoColW   = 190
	topoBarTop = 60
	topoRowY   = 80
	topoRowH   = 62
	topoBoxW   = 130
	topoBoxH   = 44
	topoBoxGap = 26
)

// topologyPage is GET /project/network-topology.
func (s *Server) topologyPage(w http.ResponseWriter, r *http.Request) {
	t, err := s.topology(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.page(w, r, http.StatusOK, "Network topology", views.NavTopology, views.TopologyPage(*t))
}

// topologySVG is GET /project/network-topology/svg: the drawing alone,
// for htmx or a script to refresh.
func (s *Server) topologySVG(w http.ResponseWriter, r *http.Request) {
	t, err := s.topology(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.TopologySVG(*t))
}

// topology lays out the project's networks, routers and instances from
// their ports: router interfaces and gateways connect routers, compute:*
// ports connect instances.
func (s *Server) topology(r *http.Request) (*views.Topology, error) {
	ctx := r.Context()
	ix, err := s.networkIndex(r)
	if err != nil {
		return nil, err
	}
	ports, _, err := s.nets.ListPorts(ctx, projectOnly(r))
	if err != nil {
		return nil, err
	}
	routers, _, err := s.nets.ListRouters(ctx, projectOnly(r))
	if err != nil {
		return nil, err
	}
	instances := s.instanceNames(ctx)

	t := &views.Topology{}
	column := map[string]int{}
	for i, n := range ix.order {
		column[n.ID] = i
		var cidrs []string
		for _, sn := range ix.subnetRows(n) {
			cidrs = append(cidrs, sn.CIDR)
		}
		t.Networks = append(t.Networks, views.TopoNetwork{ID: n.ID, Name: netLabel(n.Name, n.ID), CIDRs: strings.Join(cidrs, ", "),
			External: n.External, URL: views.Path(views.NetworksURL, n.ID), X: topoFirstX + i*topoColW, Top: topoBarTop})
	}

	type attach struct {
		col  int
		addr string
	}
	type node struct {
		views.TopoNode
		on []attach
	}
	var nodes []*node
	byDevice := map[string]*node{}
	slices.SortFunc(routers, func(a, b network.Router) int { return byName(a.Name, b.Name) })
	for _, rt := range routers {
		n := &node{TopoNode: views.TopoNode{ID: rt.ID, Kind: "router", Name: netLabel(rt.Name, rt.ID), URL: views.Path(views.RoutersURL, rt.ID)}}
		nodes = append(nodes, n)
		byDevice[rt.ID] = n
		// The gateway port belongs to no project, so the router's own
		// record says where its gateway is.
		if gw := rt.Gateway; gw != nil {
			if col, drawn := column[gw.NetworkID]; drawn {
				var addrs []string
				for _, ip := range gw.ExternalFixedIPs {
					addrs = append(addrs, ip.IPAddress)
				}
				n.on = append(n.on, attach{col, strings.Join(addrs, ", ")})
			}
		}
	}
	var instNodes []*node
	for i := range ports {
		p := &ports[i]
		col, drawn := column[p.NetworkID]
		if !drawn {
			continue
		}
		n := byDevice[p.DeviceID]
		switch {
		case p.DeviceOwner == network.OwnerRouterInterface:
			if n == nil {
				continue // another project's router
			}
		case p.OfInstance():
			if n == nil {
				n = &node{TopoNode: views.TopoNode{ID: p.DeviceID, Kind: "instance", Name: netLabel(instances[p.DeviceID], p.DeviceID)}}
				if s.comp != nil {
					n.URL = views.Path(views.InstancesURL, p.DeviceID)
				}
				instNodes = append(instNodes, n)
				byDevice[p.DeviceID] = n
			}
		default:
			continue
		}
		n.on = append(n.on, attach{col, strings.Join(fixedAddresses(p), ", ")})
	}
	slices.SortFunc(instNodes, func(a, b *node) int { return byName(a.Name, b.Name) })
	nodes = append(nodes, instNodes...)

	right := topoFirstX + topoBoxGap + topoBoxW
	for row, n := range nodes {
		slices.SortFunc(n.on, func(a, b attach) int { return a.col - b.col })
		left := 0
		if len(n.on) > 0 {
			left = n.on[0].col
		}
		n.X, n.Y, n.W, n.H = topoFirstX+left*topoColW+topoBoxGap, topoRowY+row*topoRowH, topoBoxW, topoBoxH
		if len(n.on) == 0 && len(t.Networks) == 0 {
			n.X = 20
		}
		mid := n.Y + topoBoxH/2
		for _, a := range n.on {
			bar := topoFirstX + a.col*topoColW
			l := views.TopoLink{X1: n.X, X2: bar, Y: mid, Address: a.addr}
			if bar > n.X {
				l.X1 = n.X + n.W
			}
			n.Links = append(n.Links, l)
		}
		right = max(right, n.X+n.W)
		t.Nodes = append(t.Nodes, n.TopoNode)
	}
	if len(t.Networks) > 0 {
		right = max(right, t.Networks[len(t.Networks)-1].X+topoBoxGap+topoBoxW)
	}
	t.Width = right + 40
	t.Height = max(topoRowY+len(nodes)*topoRowH+20, 180)
	for i := range t.Networks {
		t.Networks[i].Bottom = t.Height - 10
	}
	return t, nil
}
