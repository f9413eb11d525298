package compute

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Networks choices for servers without explicit networks.
const (
	NetworksNone = "none"
	NetworksAuto = "auto"
)

// maxUserData is Nova's limit on base64 user data.
const maxUserData = 65535

// ServerCreate asks for one or more servers.
type ServerCreate struct {
	Name      string
	ImageRef  string
	FlavorRef string
	KeyName   string
	// UserData is base64, at most 65535 characters.
	UserData    string
	Metadata    map[string]string
	Description *string
	// AvailabilityZone is a zone name, or (admins) "zone:host" to force a host.
	AvailabilityZone string
	MinCount         int
	MaxCount         int
	ConfigDrive      bool
	// Networks is NetworksNone, NetworksAuto or "" (absent, before 2.37:
	// like auto, but a project without networks boots with none); ignored
	// when NetworkList is non-nil.
	Networks string
	// NetworkList is an explicit networks list ({uuid}, {port},
	// {uuid, fixed_ip}); empty non-nil is as "none".
	NetworkList []NetworkRequest
	// SecurityGroups are the names (or IDs) of the groups of the ports a
	// boot creates; nil is the project's default group.
	SecurityGroups []string
	AccessIPv4     string
	AccessIPv6     string
	Hints          SchedulerHints
	// AdminPass is the requested password; one is generated when empty.
	AdminPass string
}

// CreatedServers is the result of CreateServers.
type CreatedServers struct {
	Servers       []*Server
	ReservationID string
	AdminPass     string
}

// CreateServers validates req, checks quotas and records the servers in
// BUILD (scheduling); scheduling and spawning continue in the background,
// ending in ACTIVE or in ERROR with a fault. As many servers as quota
// allows between MinCount and MaxCount are made. Kinds: Forbidden,
// Invalid (unknown flavor, image or key; image too large for the flavor;
// bad user data, metadata or zone), OverQuota.
func (s *Service) CreateServers(ctx context.Context, req ServerCreate) (*CreatedServers, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(ctx, "os_compute_api:servers:create", projectTarget(c.ProjectID, c.UserID)); err != nil {
		return nil, err
	}
	if err := checkServerName(req.Name); err != nil {
		return nil, err
	}
	if req.MinCount == 0 {
		req.MinCount = 1
	}
	if req.MaxCount == 0 {
		req.MaxCount = req.MinCount
	}
	if req.MinCount < 1 || req.MaxCount < 1 {
		return nil, fault.Invalidf("Invalid input for field/attribute min_count. Value: %d. It must be at least 1.", req.MinCount)
	}
	if req.MinCount > req.MaxCount {
		return nil, fault.Invalidf("min_count must be <= max_count")
	}
	if req.Description != nil && len(*req.Description) > 255 {
		return nil, fault.Invalidf("Invalid input for field/attribute description. It is longer than 255 characters.")
	}
	switch req.Networks {
	case "", NetworksAuto, NetworksNone:
	default:
		return nil, fault.Invalidf("Invalid input for field/attribute networks. Value: %s. Only \"auto\" and \"none\" are available.", req.Networks)
	}

	flavor, err := s.GetFlavor(ctx, req.FlavorRef)
	if fault.Is(err, fault.NotFound) {
		return nil, fault.Invalidf("Flavor %s could not be found.", req.FlavorRef)
	}
	if err != nil {
		return nil, err
	}
	if flavor.Disabled {
		return nil, fault.Invalidf("Flavor %s could not be found.", req.FlavorRef)
	}
	image, err := s.imageFor(ctx, req.ImageRef, flavor)
	if err != nil {
		return nil, err
	}
	if err := checkUserData(req.UserData); err != nil {
		return nil, err
	}
	var keyData string
	if req.KeyName != "" {
		k, err := s.st.getKeypair(ctx, s.st.db, c.UserID, req.KeyName)
		if fault.Is(err, fault.NotFound) {
			return nil, fault.Invalidf("Invalid key_name provided.")
		}
		if err != nil {
			return nil, err
		}
		keyData = k.PublicKey
	}
	quotas, err := s.st.projectQuotas(ctx, s.st.db, c.ProjectID)
	if err != nil {
		return nil, err
	}
	lim := s.effectiveQuotas(quotas)
	if err := checkMetadata(req.Metadata, lim[QuotaMetadataItems]); err != nil {
		return nil, err
	}
	zone, forcedHost, err := s.resolveZone(ctx, req.AvailabilityZone)
	if err != nil {
		return nil, err
	}
	if req.Hints.Group != "" {
		g, err := s.st.getServerGroup(ctx, s.st.db, req.Hints.Group)
		if err != nil || g.ProjectID != c.ProjectID {
			return nil, fault.Invalidf("Invalid server group %s.", req.Hints.Group)
		}
	}
	networks, err := s.resolveNetworks(ctx, c, req)
	if err != nil {
		return nil, err
	}
	pass := req.AdminPass
	if pass == "" {
		pass = randomPassword(12)
	}

	now := s.now()
	resID := "r-" + strings.ToLower(randomPassword(8))
	base := Server{
		ProjectID: c.ProjectID, UserID: c.UserID, Name: req.Name, Description: req.Description,
		ImageRef: image.ID, image: imageMetaOf(image), Flavor: flavorInfo(flavor),
		KeyName: req.KeyName, KeyData: keyData, UserData: req.UserData, ConfigDrive: req.ConfigDrive,
		AvailabilityZone: zone, Networks: networks, Hints: req.Hints,
		VMState: VMBuilding, TaskState: TaskScheduling, AccessIPv4: req.AccessIPv4, AccessIPv6: req.AccessIPv6,
		ReservationID: resID, Metadata: req.Metadata, CreatedAt: now, UpdatedAt: now,
	}
	if base.Metadata == nil {
		base.Metadata = map[string]string{}
	}
	servers, err := s.st.createServers(ctx, createArgs{
		base: base, min: req.MinCount, max: req.MaxCount, limits: lim,
		requestID: requestID(ctx), forcedHost: forcedHost,
	})
	if err != nil {
		return nil, err
	}
	for _, srv := range servers {
		id := srv.ID
		s.changed(ctx, id, nil)
		s.goBackground(ctx, func(ctx context.Context) { s.build(ctx, id, forcedHost) })
	}
	return &CreatedServers{Servers: servers, ReservationID: resID, AdminPass: pass}, nil
}

// imageFor looks up imageRef for a boot with flavor and checks it fits, as
// Nova's _check_requested_image. Kinds: Invalid.
func (s *Service) imageFor(ctx context.Context, imageRef string, flavor *Flavor) (*ImageInfo, error) {
	if imageRef == "" {
		return nil, fault.Invalidf("Missing imageRef attribute")
	}
	if s.cfg.Images == nil {
		return nil, fault.Invalidf("Can not find requested image")
	}
	// imageRef may be a full URL ending in the ID, as old clients send.
	if i := strings.LastIndex(imageRef, "/"); i >= 0 {
		imageRef = imageRef[i+1:]
	}
	im, err := s.cfg.Images.GetImage(ctx, imageRef)
	if fault.Is(err, fault.NotFound) {
		return nil, fault.Invalidf("Can not find requested image")
	}
	if err != nil {
		return nil, err
	}
	if im.Status != "active" {
		return nil, fault.Invalidf("Image %s is not active.", im.ID)
	}
	if err := checkImageFits(im, flavor); err != nil {
		return nil, err
	}
	return im, nil
}

const gib = int64(1) << 30

// checkImageFits checks min_ram, min_disk and the image size against the
// flavor, with Nova's messages.
func checkImageFits(im *ImageInfo, f *Flavor) error {
	if im.MinRAMMB > f.MemoryMB {
		return fault.Invalidf("Flavor's memory is too small for requested image.")
	}
	if f.RootGB == 0 {
		return nil // a zero-disk flavor takes the image's size
	}
	root := f.RootGB * gib
	if size := max(im.Size, im.VirtualSize); size > root {
		return fault.Invalidf("Flavor's disk is too small for requested image. Flavor disk is %d bytes, image is %d bytes.", root, size)
	}
	if im.MinDiskGB*gib > root {
		return fault.Invalidf("Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is %d bytes, minimum size is %d bytes.", root, im.MinDiskGB*gib)
	}
	return nil
}

// rootGB is the root disk an instance gets: the flavor's, or for a
// zero-disk flavor the image's size rounded up to GiB.
func rootGB(f FlavorInfo, im imageMeta) int64 {
	if f.RootGB > 0 {
		return f.RootGB
	}
	size := max(im.Size, im.VirtualSize, im.MinDiskGB*gib)
	return max(1, (size+gib-1)/gib)
}

func checkUserData(ud string) error {
	if ud == "" {
		return nil
	}
	if len(ud) > maxUserData {
		return fault.Invalidf("User data too large. User data must be no larger than %d bytes once base64 encoded. Your data is %d bytes", maxUserData, len(ud))
	}
	if _, err := base64.StdEncoding.DecodeString(ud); err != nil {
		return fault.Invalidf("User data needs to be valid base 64.")
	}
	return nil
}

// checkMetadata validates server metadata: keys 1 to 255 characters,
// values at most 255, and no more items than the quota.
func checkMetadata(md map[string]string, limit int64) error {
	for k, v := range md {
		if len(k) == 0 || len(k) > 255 {
			return fault.Invalidf("Invalid input for field/attribute metadata. Metadata keys must be 1 to 255 characters.")
		}
		if len(v) > 255 {
			return fault.Invalidf("Invalid input for field/attribute metadata. Metadata values must be at most 255 characters.")
		}
	}
	if limit >= 0 && int64(len(md)) > limit {
		return fault.OverQuotaf("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(md), limit)
	}
	return nil
}

// resolveZone checks a requested zone; "zone:host" (admins only) forces a
// host and returns its ID. Kinds: Invalid, Forbidden.
func (s *Service) resolveZone(ctx context.Context, az string) (zone, hostID string, err error) {
	if az == "" {
		return "", "", nil
	}
	zone, host, forced := strings.Cut(az, ":")
	if forced {
		c, _ := auth.Caller(ctx)
		if _, err := s.authorize(ctx, policyForcedHost, projectTarget(c.ProjectID, c.UserID)); err != nil {
			return "", "", err
		}
		if host != "" {
			if s.hosts == nil {
				return "", "", fault.Invalidf("Compute host %s could not be found.", host)
			}
			h, err := s.hosts.GetByHostname(ctx, host)
			if err != nil {
				return "", "", fault.Invalidf("Compute host %s could not be found.", host)
			}
			hostID = h.ID
		}
	}
	if zone != "" {
		zones, err := s.zones(ctx)
		if err != nil {
			return "", "", err
		}
		if _, ok := zones[zone]; !ok {
			return "", "", fault.Invalidf("The requested availability zone is not available")
		}
	}
	return zone, hostID, nil
}

// quotaCheck finds how many of min..max servers of flavor f fit in
// project's quota given used, or returns Nova's TooManyInstances fault.
func quotaCheck(lim QuotaLimits, used map[string]int64, f FlavorInfo, minN, maxN int) (int, error) {
	headroom := func(r string) int64 {
		if lim[r] < 0 {
			return 1 << 40
		}
		return lim[r] - used[r]
	}
	allowed := int64(maxN)
	allowed = min(allowed, headroom(QuotaInstances))
	if f.VCPUs > 0 {
		allowed = min(allowed, headroom(QuotaCores)/f.VCPUs)
	}
	if f.MemoryMB > 0 {
		allowed = min(allowed, headroom(QuotaRAM)/f.MemoryMB)
	}
	if allowed >= int64(minN) {
		return int(allowed), nil
	}
	want := map[string]int64{QuotaInstances: int64(maxN), QuotaCores: int64(maxN) * f.VCPUs, QuotaRAM: int64(maxN) * f.MemoryMB}
	var overs, reqs, useds, alloweds []string
	names := []string{QuotaCores, QuotaInstances, QuotaRAM}
	sort.Strings(names)
	for _, r := range names {
		if lim[r] >= 0 && used[r]+want[r] > lim[r] {
			overs = append(overs, r)
			req := fmt.Sprint(want[r])
			if r == QuotaInstances && minN != maxN {
				req = fmt.Sprintf("%d-%d", minN, maxN)
			} else if r == QuotaInstances {
				req = fmt.Sprint(minN)
			}
			reqs = append(reqs, req)
			useds = append(useds, fmt.Sprint(used[r]))
			alloweds = append(alloweds, fmt.Sprint(lim[r]))
		}
	}
	o := strings.Join(overs, ", ")
	return 0, fault.OverQuotaf("Quota exceeded for %s: Requested %s, but already used %s of %s %s",
		o, strings.Join(reqs, ", "), strings.Join(useds, ", "), strings.Join(alloweds, ", "), o)
}

const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// randomPassword returns n characters from an unambiguous alphabet, as
// Nova's generate_password.
func randomPassword(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b)
}
