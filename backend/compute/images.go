package compute

import "context"

// ImageInfo is what compute needs of an image from the image service.
type ImageInfo struct {
	ID              string
	Name            string
	Status          string // "active" when usable
	DiskFormat      string // qcow2, raw, iso, ...
	ContainerFormat string
	// Size is the stored size in bytes; VirtualSize the disk's size (0 if unknown).
	Size        int64
	VirtualSize int64
	// MinDiskGB and MinRAMMB are the image's min_disk and min_ram.
	MinDiskGB int64
	MinRAMMB  int64
	// Checksum is the MD5; OSHashValue the SHA-512 the agent verifies.
	Checksum    string
	OSHashAlgo  string
	OSHashValue string
	Properties  map[string]string
}

// SnapshotSpec describes the queued image a createImage makes.
type SnapshotSpec struct {
	Name            string
	DiskFormat      string
	ContainerFormat string
	MinDiskGB       int64
	MinRAMMB        int64
	// Properties include Nova's image_type=snapshot, instance_uuid,
	// base_image_ref, user_id and the user's metadata.
	Properties map[string]string
}

// ImageGetter is compute's view of the image service. Calls carry the
// caller's context (credentials included), so visibility is the image
// service's. Wiring provides an adapter over image.Service (GetImage,
// CreateImage, DeleteImage), mapping its Image to ImageInfo.
type ImageGetter interface {
	// GetImage returns image id, or a fault.NotFound when it does not exist
	// or the caller may not see it.
	GetImage(ctx context.Context, id string) (*ImageInfo, error)
	// CreateSnapshotImage creates a queued image owned by the caller's
	// project, whose content the agent then uploads.
	CreateSnapshotImage(ctx context.Context, spec SnapshotSpec) (*ImageInfo, error)
	// DeleteImage deletes image id (a snapshot whose upload failed). It is
	// also called while applying an agent's report, whose ctx carries no
	// caller: the adapter then acts as the service itself (compute only
	// deletes images it created for a snapshot).
	DeleteImage(ctx context.Context, id string) error
}
