package compute

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// MetadataRequest is one guest's request to the metadata service, as the
// metadata proxy on its network identified it: the instance owning the
// port the request came from, that port's project and addresses.
type MetadataRequest struct {
	InstanceID string
	// ProjectID is the project of the port the request came from; an
	// instance of another project is never answered for.
	ProjectID  string
	FixedIP    string
	FloatingIP string
	// Path is the request's path: "/openstack/latest/meta_data.json",
	// "/latest/meta-data/hostname", ...
	Path string
}

// MetadataAnswer is a metadata document.
type MetadataAnswer struct {
	ContentType string
	Body        []byte
}

// OpenStack metadata versions served, oldest first; every one answers
// with the latest content, as the files only ever gained keys.
var openstackVersions = []string{"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
	"2016-10-06", "2017-02-22", "2018-08-27", "latest"}

// EC2 metadata versions served.
var ec2Versions = []string{"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
	"2008-02-01", "2008-09-01", "2009-04-04", "latest"}

// Metadata answers a guest's metadata request: the OpenStack tree under
// /openstack/ (meta_data.json, user_data, network_data.json,
// vendor_data.json) and the EC2 tree (/latest/meta-data/..., user-data).
// It trusts the caller (the metadata proxy, through the signed agent API)
// to have identified the instance by its network and fixed IP. Faults:
// NotFound for an unknown path, a deleted instance or one not in the
// port's project.
func (s *Service) Metadata(ctx context.Context, req MetadataRequest) (*MetadataAnswer, error) {
	srv, err := s.st.getServer(ctx, s.st.db, req.InstanceID)
	if err != nil || srv.Deleted || srv.ProjectID != req.ProjectID {
		return nil, fault.NotFoundf("No instance is at this address.")
	}
	nics, err := s.instanceNICs(ctx, srv)
	if err != nil {
		return nil, err
	}
	files, err := openstackFiles(srv, nics)
	if err != nil {
		return nil, err
	}
	parts := strings.FieldsFunc(req.Path, func(r rune) bool { return r == '/' })
	text := func(lines ...string) (*MetadataAnswer, error) {
		return &MetadataAnswer{ContentType: "text/plain; charset=utf-8", Body: []byte(strings.Join(lines, "\n"))}, nil
	}
	notFound := fault.NotFoundf("The resource could not be found.")
	if len(parts) == 0 {
		return text(append(append([]string{}, ec2Versions...), "openstack")...)
	}
	if parts[0] == "openstack" {
		switch {
		case len(parts) == 1:
			return text(openstackVersions...)
		case !contains(openstackVersions, parts[1]) || len(parts) > 3:
			return nil, notFound
		case len(parts) == 2:
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			return text(names...)
		}
		b, ok := files[parts[2]]
		if !ok {
			return nil, notFound
		}
		ct := "application/json"
		if parts[2] == "user_data" {
			ct = "application/octet-stream"
		}
		return &MetadataAnswer{ContentType: ct, Body: b}, nil
	}
	if !contains(ec2Versions, parts[0]) {
		return nil, notFound
	}
	if len(parts) == 1 {
		if _, ok := files["user_data"]; ok {
			return text("meta-data/", "user-data")
		}
		return text("meta-data/")
	}
	switch parts[1] {
	case "user-data":
		if b, ok := files["user_data"]; ok && len(parts) == 2 {
			return &MetadataAnswer{ContentType: "application/octet-stream", Body: b}, nil
		}
		return nil, notFound
	case "meta-data":
		node := any(ec2Tree(srv, req))
		for _, p := range parts[2:] {
			dir, ok := node.(map[string]any)
			if !ok {
				return nil, notFound
			}
			if node, ok = dir[p]; !ok {
				return nil, notFound
			}
		}
		switch n := node.(type) {
		case string:
			return text(n)
		case map[string]any:
			if len(parts) == 3 && parts[2] == "public-keys" {
				return text("0=" + srv.KeyName)
			}
			return text(ec2Listing(n)...)
		}
	}
	return nil, notFound
}

// ec2Tree is the EC2-style meta-data tree of srv: directories are maps,
// values strings.
func ec2Tree(srv *Server, req MetadataRequest) map[string]any {
	host := srv.Hostname
	if host == "" {
		host = srv.Name
	}
	t := map[string]any{
		"ami-id":               "ami-" + shortID(strings.ReplaceAll(srv.ImageRef, "-", ""), 8),
		"ami-launch-index":     strconv.Itoa(srv.LaunchIndex),
		"hostname":             host,
		"instance-action":      "none",
		"instance-id":          "i-" + shortID(strings.ReplaceAll(srv.ID, "-", ""), 8),
		"instance-type":        srv.Flavor.Name,
		"local-hostname":       host,
		"local-ipv4":           req.FixedIP,
		"public-hostname":      host,
		"public-ipv4":          req.FloatingIP,
		"reservation-id":       srv.ReservationID,
		"security-groups":      "default",
		"placement":            map[string]any{"availability-zone": srv.AvailabilityZone},
		"block-device-mapping": map[string]any{"ami": "vda", "root": "/dev/vda"},
	}
	if srv.KeyName != "" {
		t["public-keys"] = map[string]any{"0": map[string]any{"openssh-key": srv.KeyData}}
	}
	return t
}

// ec2Listing lists a meta-data directory as EC2 does: subdirectories end
// in "/".
func ec2Listing(dir map[string]any) []string {
	out := make([]string, 0, len(dir))
	for k, v := range dir {
		if _, sub := v.(map[string]any); sub {
			k += "/"
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
