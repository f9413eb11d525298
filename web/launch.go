package web

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/views"
)

// launchValues are the launch form's inputs, from a query (prefill and the
// live re-render on change) or a post.
type launchValues struct {
	name, count, zone, image, flavor, key, group, userData string
	networks, secGroups                                    []string
	// newKeyName and newPublicKey import a key pair as part of the launch.
	newKeyName, newPublicKey string
	// touched is set when the form was submitted or re-rendered, so an
	// empty networks list means "none" rather than "not chosen yet".
	touched bool
}

func launchFrom(v url.Values) launchValues {
	get := v.Get
	return launchValues{
		name: strings.TrimSpace(get("name")), count: strings.TrimSpace(get("count")),
		zone: get("availability_zone"), image: get("image"), flavor: get("flavor"),
		key: get("key_name"), group: get("server_group"), userData: get("user_data"),
		networks: v["network"], secGroups: v["security_group"], touched: v.Has("name"),
		newKeyName: strings.TrimSpace(get("new_key_name")), newPublicKey: strings.TrimSpace(get("new_public_key")),
	}
}

// launchChoices are what the form offers, read from the services.
type launchChoices struct {
	images  []image.Image
	flavors []compute.Flavor
}

// buildLaunchForm fills the form's choices, hints and quota line for lv.
func (s *Server) buildLaunchForm(r *http.Request, lv launchValues, f *views.LaunchForm) launchChoices {
	ctx := r.Context()
	var ch launchChoices
	f.Name, f.Count, f.Zone, f.UserData, f.ImageChoice = lv.name, lv.count, lv.zone, lv.userData, lv.image
	f.NewKeyName, f.NewPublicKey = lv.newKeyName, lv.newPublicKey
	if f.Count == "" {
		f.Count = "1"
	}
	f.Action, f.Cancel = views.InstancesURL, views.InstancesURL

	f.Zones = []views.Option{{Value: "", Label: "Any availability zone", Selected: lv.zone == ""}}
	if zones, err := s.comp.AvailabilityZones(ctx, false); err == nil {
		for _, z := range zones {
			label := z.Name
			if !z.Available {
				label += " (unavailable)"
			}
			f.Zones = append(f.Zones, views.Option{Value: z.Name, Label: label, Selected: z.Name == lv.zone})
		}
	}

	var selImage *image.Image
	if s.imgs != nil {
		imgs, _, err := s.imgs.ListImages(ctx, image.ListFilter{Statuses: []string{"active"}, Limit: 1000, SortKeys: []string{"name"}, SortDirs: []string{"asc"}})
		if err != nil {
			s.log.WarnContext(ctx, "list images for launch", "err", err)
		}
		ch.images = imgs
		var plain, snaps []views.Option
		for i, im := range imgs {
			o := views.Option{Value: im.ID, Label: imageLabel(&im), Selected: im.ID == lv.image}
			if o.Selected {
				selImage = &imgs[i]
			}
			if im.Properties["image_type"] == "snapshot" {
				snaps = append(snaps, o)
			} else {
				plain = append(plain, o)
			}
		}
		f.Images = []views.OptionGroup{{Label: "Images", Options: plain}, {Label: "Snapshots", Options: snaps}}
	}

	flavors, err := s.comp.ListFlavors(ctx, compute.FlavorFilter{SortKey: "memory_mb"})
	if err != nil {
		s.log.WarnContext(ctx, "list flavors for launch", "err", err)
	}
	ch.flavors = flavors
	var selFlavor *compute.Flavor
	for i, fl := range flavors {
		label := flavorLabel(&fl)
		if selImage != nil && flavorMisfit(selImage, &fl) != "" {
			label += " (too small for the image)"
		}
		o := views.Option{Value: fl.ID, Label: label, Selected: fl.ID == lv.flavor}
		if o.Selected {
			selFlavor = &flavors[i]
		}
		f.Flavors = append(f.Flavors, o)
	}
	if selImage != nil && selFlavor != nil {
		f.FlavorHint = flavorMisfit(selImage, selFlavor)
	}

	f.KeyPairs = []views.Option{{Value: "", Label: "No key pair", Selected: lv.key == ""}}
	if kps, err := s.comp.ListKeypairs(ctx, "", 0, ""); err == nil {
		for _, k := range kps {
			f.KeyPairs = append(f.KeyPairs, views.Option{Value: k.Name, Label: k.Name, Selected: k.Name == lv.key})
		}
	}
	f.Groups = []views.Option{{Value: "", Label: "None", Selected: lv.group == ""}}
	if gs, err := s.comp.ListServerGroups(ctx, false, 0, 0); err == nil {
		for _, g := range gs {
			f.Groups = append(f.Groups, views.Option{Value: g.ID, Label: g.Name + " (" + g.Policy + ")", Selected: g.ID == lv.group})
		}
	}

	if s.nets != nil {
		f.HasNetwork = true
		if nets, _, err := s.nets.ListNetworks(ctx, network.ListOptions{}); err == nil {
			var usable []network.Network
			for _, n := range nets {
				if !n.External {
					usable = append(usable, n)
				}
			}
			for _, n := range usable {
				label := n.Name
				if label == "" {
					label = n.ID
				}
				if n.Shared && n.ProjectID != viewerFrom(r).ProjectID {
					label += " (shared)"
				}
				// With one network and nothing chosen yet, it is the one.
				sel := slices.Contains(lv.networks, n.ID) || (!lv.touched && len(usable) == 1)
				f.Networks = append(f.Networks, views.Option{Value: n.ID, Label: label, Selected: sel})
			}
		}
		if sgs, _, err := s.nets.ListSecurityGroups(ctx, network.ListOptions{
			Filters: map[string][]string{"project_id": {viewerFrom(r).ProjectID}}}); err == nil {
			for _, g := range sgs {
				sel := slices.Contains(lv.secGroups, g.Name) || (!lv.touched && g.Name == "default")
				f.SecurityGroups = append(f.SecurityGroups, views.Option{Value: g.Name, Label: g.Name, Selected: sel})
			}
		}
	}

	if lim, err := s.comp.Limits(ctx, ""); err == nil {
		n, _ := strconv.ParseInt(f.Count, 10, 64)
		n = max(n, 1)
		var cores, ram int64
		if selFlavor != nil {
			cores, ram = n*selFlavor.VCPUs, n*selFlavor.MemoryMB
		}
		add := func(label, key string, use int64, unit string) {
			u, ok := lim[key]
			if !ok {
				return
			}
			used := u.InUse + u.Reserved
			f.Quota = append(f.Quota, views.QuotaLine{Label: label, Use: use, Used: used, Limit: u.Limit, Unit: unit,
				Over: u.Limit >= 0 && used+use > u.Limit})
		}
		add("Instances", compute.QuotaInstances, n, "")
		add("vCPUs", compute.QuotaCores, cores, "")
		add("RAM", compute.QuotaRAM, ram, " MiB")
	}
	return ch
}

func imageLabel(im *image.Image) string {
	l := im.Name
	if l == "" {
		l = im.ID
	}
	if im.Size != nil {
		l += " (" + views.Bytes(*im.Size) + ")"
	}
	return l
}

// flavorMisfit says why flavor fl cannot hold image im, or "".
func flavorMisfit(im *image.Image, fl *compute.Flavor) string {
	var why []string
	if im.MinRAM > 0 && int64(im.MinRAM) > fl.MemoryMB {
		why = append(why, fmt.Sprintf("the image needs %d MiB of RAM", im.MinRAM))
	}
	if fl.RootGB > 0 {
		if im.MinDisk > 0 && int64(im.MinDisk) > fl.RootGB {
			why = append(why, fmt.Sprintf("the image needs a %d GiB disk", im.MinDisk))
		} else if im.VirtualSize != nil && *im.VirtualSize > fl.RootGB<<30 {
			why = append(why, "the image's virtual disk ("+views.Bytes(*im.VirtualSize)+") is larger than the flavor's disk")
		}
	}
	if len(why) == 0 {
		return ""
	}
	return "Flavor " + fl.Name + " is too small: " + strings.Join(why, "; ") + "."
}

// launchCreateKey is POST /project/instances/new/keypair: the launch
// dialog's "Create a key pair". It answers the dialog's key pair block with
// the new key chosen and its private key, which app.js downloads once.
func (s *Server) launchCreateKey(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.failed(w, r, views.InstancesURL, err)
		return
	}
	lv := launchFrom(r.PostForm)
	var f views.LaunchForm
	f.CreateKeyName = strings.TrimSpace(r.PostForm.Get("create_key_name"))
	status := http.StatusOK
	if f.CreateKeyName == "" {
		f.SetError("create_key_name", "Name the key pair to create.")
		status = http.StatusUnprocessableEntity
	} else if kp, err := s.comp.CreateKeypair(r.Context(), compute.KeypairCreate{Name: f.CreateKeyName}); err != nil {
		s.formFault(r, &f.Form, err, "name")
		if f.Error != "" {
			f.SetError("create_key_name", f.Error)
			f.Error = ""
		}
		status = formStatus(err)
	} else {
		lv.key = kp.Name
		f.CreatedKey = &views.CreatedKey{Name: kp.Name, File: pemFileName(kp.Name), PrivateKey: kp.PrivateKey}
	}
	s.buildLaunchForm(r, lv, &f)
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, views.LaunchKeyPair(f))
}

func (s *Server) renderLaunch(w http.ResponseWriter, r *http.Request, status int, f views.LaunchForm) {
	if isHX(r) && hxTarget(r) == "launch-form" {
		s.render(w, r, status, views.LaunchFormView(f))
		return
	}
	s.formPage(w, r, status, "Launch instance", views.NavInstances, views.InstancesURL, "Instances", views.LaunchFormView(f))
}

// launchForm is GET /project/instances/new; ?image= preselects an image
// (the Images page's Launch button). Changing the image or flavor re-renders
// the form with the fit hint and quota line.
func (s *Server) launchForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f views.LaunchForm
	s.buildLaunchForm(r, launchFrom(q), &f)
	s.renderLaunch(w, r, http.StatusOK, f)
}

// launch is POST /project/instances.
func (s *Server) launch(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	lv := launchFrom(r.PostForm)
	var f views.LaunchForm
	ch := s.buildLaunchForm(r, lv, &f)
	if lv.name == "" {
		f.SetError("name", "Enter a name for the instance.")
	}
	count, err := strconv.Atoi(lv.count)
	if err != nil || count < 1 || count > 50 {
		f.SetError("count", "Enter a number from 1 to 50.")
	}
	if lv.image == "" {
		f.SetError("image", "Choose an image.")
	} else if s.imgs != nil && !slices.ContainsFunc(ch.images, func(im image.Image) bool { return im.ID == lv.image }) {
		f.SetError("image", "This image is not available; choose another.")
	}
	if lv.flavor == "" {
		f.SetError("flavor", "Choose a flavor.")
	} else if f.FlavorHint != "" {
		f.SetError("flavor", f.FlavorHint)
	}
	ud := base64.StdEncoding.EncodeToString([]byte(lv.userData))
	if lv.userData == "" {
		ud = ""
	}
	if len(ud) > 65535 {
		f.SetError("user_data", "User data is limited to 48 KiB.")
	}
	if lv.newPublicKey != "" && lv.newKeyName == "" {
		f.SetError("new_key_name", "Name the key pair to import.")
	}
	if !f.Valid() {
		s.renderLaunch(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	if lv.newPublicKey != "" {
		// The key pair is imported first: a refused key stops the launch
		// before anything is built, and it stays for the next launch.
		kp, err := s.comp.CreateKeypair(r.Context(), compute.KeypairCreate{Name: lv.newKeyName, PublicKey: lv.newPublicKey})
		if err != nil {
			s.formFault(r, &f.Form, err, "new_key_name", "new_public_key")
			s.renderLaunch(w, r, formStatus(err), f)
			return
		}
		lv.key = kp.Name
	}
	req := compute.ServerCreate{
		Name: lv.name, ImageRef: lv.image, FlavorRef: lv.flavor, KeyName: lv.key, UserData: ud,
		AvailabilityZone: lv.zone, MinCount: count, MaxCount: count, Networks: compute.NetworksNone,
	}
	if len(lv.networks) > 0 {
		req.Networks = ""
		for _, n := range lv.networks {
			req.NetworkList = append(req.NetworkList, compute.NetworkRequest{UUID: n})
		}
		req.SecurityGroups = lv.secGroups
	}
	if lv.group != "" {
		req.Hints.Group = lv.group
	}
	res, err := s.comp.CreateServers(r.Context(), req)
	if err != nil {
		s.formFault(r, &f.Form, err, "name", "flavor", "image", "user_data", "availability_zone", "key_name", "network")
		s.renderLaunch(w, r, formStatus(err), f)
		return
	}
	msg := "Launching instance " + quoted(lv.name) + "."
	if n := len(res.Servers); n > 1 {
		msg = "Launching " + strconv.Itoa(n) + " instances named " + quoted(lv.name) + "."
	}
	s.done(w, r, views.InstancesURL, msg)
}
