package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// FormatInfo is what an image's own headers say it is.
type FormatInfo struct {
	// Format is the qemu-level format the data really has: raw, qcow2,
	// vmdk, vhd, vhdx, vdi or iso (ISO 9660 or UDF, raw to qemu).
	Format string
	// VirtualSize is the disk size the header declares; for raw and iso,
	// the data size.
	VirtualSize int64
}

// Header field offsets and limits, named after the specifications (qcow2:
// qemu docs/interop/qcow2.txt; VMDK: VMware's "Virtual Disk Format 5.0";
// VHD/VHDX: Microsoft's specifications; VDI: qemu block/vdi.c).
const (
	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21
	qcowV2HeaderLen    = 72
	qcowV3HeaderLen    = 104

	qcowIncompatDirty      = 1 << 0
	qcowIncompatCorrupt    = 1 << 1
	qcowIncompatDataFile   = 1 << 2
	qcowIncompatCompress   = 1 << 3
	qcowIncompatExtendedL2 = 1 << 4
	qcowIncompatKnown      = qcowIncompatDirty | qcowIncompatCorrupt | qcowIncompatDataFile | qcowIncompatCompress | qcowIncompatExtendedL2

	qcowExtEnd           = 0x00000000
	qcowExtBackingFormat = 0xe2792aca
	qcowExtDataFile      = 0x44415441 // "DATA": external data file name
	qcowExtEncryption    = 0x0537be77

	vmdkDescMax   = 1<<20 - 1
	vmdkGDAtEnd   = math.MaxUint64
	vmdkMarkerEOS = 0
	vmdkMarkerFtr = 3

	vhdFixed        = 2
	vhdDynamic      = 3
	vhdDifferencing = 4

	vhdxRegionTableOff = 192 << 10
	vhdxTableMax       = 64 << 10

	vdiSignature = 0xbeda107f
	vdiNormal    = 1
	vdiFixed     = 2

	sector = 512
)

// GUIDs of the VHDX structures we read, in their on-disk byte order.
var (
	vhdxMetadataRegion = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxVirtualSize    = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	vhdxFileParams     = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	vhdxParentLocator  = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

// unsafeImage is the rejection of image data, shown to the user.
func unsafeImage(format, msg string, args ...any) error {
	return fault.Invalidf("Image data rejected: %s", fmt.Sprintf(msg, args...)).WithType(format)
}

// DetectFormat reads the headers of the size bytes in r and reports the
// format the data really has, whatever its declared format, without
// running any external program. It refuses (fault Invalid) data qemu would
// let reach other files: a qcow2 image with a backing file, an external
// data file or encryption; a VMDK descriptor naming extent files, or a
// sparse VMDK whose embedded descriptor names a path; differencing VHD,
// VHDX and VDI images; QED, LUKS and Parallels images; and headers that do
// not parse. It reads at most a few MiB and never panics on any input.
func DetectFormat(r io.ReaderAt, size int64) (FormatInfo, error) {
	if size < 0 {
		return FormatInfo{}, unsafeImage("", "negative size")
	}
	hdr, err := readAt(r, 0, sector, size)
	if err != nil {
		return FormatInfo{}, err
	}
	switch {
	case bytes.HasPrefix(hdr, []byte("QFI\xfb")):
		return detectQcow2(r, size, hdr)
	case bytes.HasPrefix(hdr, []byte("KDMV")):
		return detectSparseVMDK(r, size, hdr)
	case bytes.HasPrefix(hdr, []byte("COWD")):
		return FormatInfo{Format: "vmdk"}, unsafeImage("vmdk", "VMDK3 (COWD) sparse images are not supported")
	case bytes.HasPrefix(hdr, []byte("conectix")):
		return detectVHD(hdr)
	case bytes.HasPrefix(hdr, []byte("vhdxfile")):
		return detectVHDX(r, size)
	case len(hdr) >= 0x48 && binary.LittleEndian.Uint32(hdr[0x40:]) == vdiSignature:
		return detectVDI(hdr)
	case bytes.HasPrefix(hdr, []byte("QED\x00")):
		return FormatInfo{Format: "qed"}, unsafeImage("qed", "QED images are not supported")
	case bytes.HasPrefix(hdr, []byte("LUKS\xba\xbe")):
		return FormatInfo{Format: "luks"}, unsafeImage("luks", "LUKS encrypted images are not supported")
	case bytes.HasPrefix(hdr, []byte("WithoutFreeSpace")) || bytes.HasPrefix(hdr, []byte("WithouFreSpacExt")):
		return FormatInfo{Format: "parallels"}, unsafeImage("parallels", "Parallels images are not supported")
	}
	if isText(hdr) {
		if info, ok, err := detectVMDKDescriptor(r, size); ok || err != nil {
			return info, err
		}
	}
	if iso, err := isISO(r, size); err != nil || iso {
		return FormatInfo{Format: "iso", VirtualSize: size}, err
	}
	if size >= sector {
		ftr, err := readAt(r, size-sector, sector, size)
		if err != nil {
			return FormatInfo{}, err
		}
		if bytes.HasPrefix(ftr, []byte("conectix")) {
			return detectVHD(ftr)
		}
	}
	return FormatInfo{Format: "raw", VirtualSize: size}, nil
}

// readAt reads up to n bytes at off, fewer at the end of the data.
func readAt(r io.ReaderAt, off, n, size int64) ([]byte, error) {
	if off < 0 || off >= size || n <= 0 {
		return nil, nil
	}
	n = min(n, size-off)
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read image header: %w", err)
	}
	return buf[:got], nil
}

// --- qcow2 ---

func detectQcow2(r io.ReaderAt, size int64, hdr []byte) (FormatInfo, error) {
	info := FormatInfo{Format: "qcow2"}
	bad := func(msg string, args ...any) (FormatInfo, error) { return info, unsafeImage("qcow2", msg, args...) }
	if len(hdr) < qcowV2HeaderLen {
		return bad("truncated qcow2 header")
	}
	be := binary.BigEndian
	version := be.Uint32(hdr[4:])
	if version != 2 && version != 3 {
		return bad("unsupported qcow2 version %d", version)
	}
	if be.Uint64(hdr[8:]) != 0 || be.Uint32(hdr[16:]) != 0 {
		return bad("the qcow2 image has a backing file")
	}
	clusterBits := be.Uint32(hdr[20:])
	if clusterBits < qcowMinClusterBits || clusterBits > qcowMaxClusterBits {
		return bad("invalid qcow2 cluster size")
	}
	vsize := be.Uint64(hdr[24:])
	if vsize > math.MaxInt64 {
		return bad("invalid qcow2 virtual size")
	}
	info.VirtualSize = int64(vsize)
	if be.Uint32(hdr[32:]) != 0 {
		return bad("encrypted qcow2 images are not supported")
	}
	clusterSize := int64(1) << clusterBits
	extStart := int64(qcowV2HeaderLen)
	if version == 3 {
		if len(hdr) < qcowV3HeaderLen {
			return bad("truncated qcow2 header")
		}
		incompat := be.Uint64(hdr[72:])
		if incompat&qcowIncompatDataFile != 0 {
			return bad("the qcow2 image has an external data file")
		}
		if incompat&^uint64(qcowIncompatKnown) != 0 {
			return bad("the qcow2 image uses unknown incompatible features %#x", incompat&^uint64(qcowIncompatKnown))
		}
		hlen := int64(be.Uint32(hdr[100:]))
		if hlen < qcowV3HeaderLen || hlen%8 != 0 || hlen > clusterSize {
			return bad("invalid qcow2 header length %d", hlen)
		}
		extStart = hlen
	}
	// Header extensions live in the rest of the first cluster.
	cluster, err := readAt(r, 0, clusterSize, size)
	if err != nil {
		return info, err
	}
	off := extStart
	for {
		if off+8 > int64(len(cluster)) {
			if int64(len(cluster)) < clusterSize {
				return bad("truncated qcow2 header extensions")
			}
			return bad("qcow2 header extensions overrun the first cluster")
		}
		typ := be.Uint32(cluster[off:])
		n := int64(be.Uint32(cluster[off+4:]))
		if typ == qcowExtEnd {
			return info, nil
		}
		switch typ {
		case qcowExtBackingFormat:
			return bad("the qcow2 image names a backing file format")
		case qcowExtDataFile:
			return bad("the qcow2 image names an external data file")
		case qcowExtEncryption:
			return bad("encrypted qcow2 images are not supported")
		}
		next := off + 8 + (n+7)/8*8
		if n > clusterSize || next > int64(len(cluster)) {
			return bad("invalid qcow2 header extension")
		}
		off = next
	}
}

// --- VMDK ---

func detectSparseVMDK(r io.ReaderAt, size int64, hdr []byte) (FormatInfo, error) {
	info := FormatInfo{Format: "vmdk"}
	bad := func(msg string, args ...any) (FormatInfo, error) { return info, unsafeImage("vmdk", msg, args...) }
	h, ok := parseVMDKHeader(hdr)
	if !ok {
		return bad("truncated VMDK header")
	}
	if h.version < 1 || h.version > 3 {
		return bad("unsupported VMDK version %d", h.version)
	}
	if h.capacity > math.MaxInt64/sector {
		return bad("invalid VMDK capacity")
	}
	info.VirtualSize = int64(h.capacity) * sector
	// qemu reads the embedded descriptor from sector 1 only.
	if h.descOffset != 1 || h.descSize == 0 || h.descSize > vmdkDescMax/sector+1 {
		return bad("the VMDK descriptor is not where a monolithic sparse VMDK keeps it")
	}
	desc, err := readAt(r, sector, min(int64(h.descSize)*sector, vmdkDescMax), size)
	if err != nil {
		return info, err
	}
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	if err := checkVMDKDescriptor(string(desc), true); err != nil {
		return info, err
	}
	if h.gdOffset == vmdkGDAtEnd {
		// streamOptimized with a footer, which then takes precedence.
		if size < 3*sector {
			return bad("the VMDK footer is missing")
		}
		tail, err := readAt(r, size-3*sector, 3*sector, size)
		if err != nil {
			return info, err
		}
		if len(tail) < 3*sector {
			return bad("the VMDK footer is missing")
		}
		le := binary.LittleEndian
		if le.Uint32(tail[8:]) != 0 || le.Uint32(tail[12:]) != vmdkMarkerFtr || !allZero(tail[16:sector]) {
			return bad("the VMDK footer marker is invalid")
		}
		f, ok := parseVMDKHeader(tail[sector : 2*sector])
		if !ok || string(tail[sector:sector+4]) != "KDMV" || f.version != h.version ||
			f.descOffset != h.descOffset || f.descSize != h.descSize || f.gdOffset == vmdkGDAtEnd {
			return bad("the VMDK footer does not match its header")
		}
		eos := tail[2*sector:]
		if le.Uint64(eos) != 0 || le.Uint32(eos[8:]) != 0 || le.Uint32(eos[12:]) != vmdkMarkerEOS || !allZero(eos[16:]) {
			return bad("the VMDK end-of-stream marker is invalid")
		}
	}
	return info, nil
}

type vmdkHeader struct {
	version    uint32
	capacity   uint64
	descOffset uint64
	descSize   uint64
	gdOffset   uint64
}

func parseVMDKHeader(b []byte) (vmdkHeader, bool) {
	if len(b) < 64 {
		return vmdkHeader{}, false
	}
	le := binary.LittleEndian
	return vmdkHeader{
		version:    le.Uint32(b[4:]),
		capacity:   le.Uint64(b[12:]),
		descOffset: le.Uint64(b[28:]),
		descSize:   le.Uint64(b[36:]),
		gdOffset:   le.Uint64(b[56:]),
	}, true
}

// detectVMDKDescriptor recognises a text VMDK descriptor file, which qemu
// opens by following its extent lines to other files: ok is false when the
// text is not a descriptor.
func detectVMDKDescriptor(r io.ReaderAt, size int64) (FormatInfo, bool, error) {
	text, err := readAt(r, 0, vmdkDescMax, size)
	if err != nil {
		return FormatInfo{}, false, err
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	lower := strings.ToLower(string(text))
	if !strings.Contains(lower, "createtype=") && !strings.Contains(lower, "# disk descriptorfile") && !hasExtentLine(lower) {
		return FormatInfo{}, false, nil
	}
	info := FormatInfo{Format: "vmdk"}
	if err := checkVMDKDescriptor(string(text), false); err != nil {
		return info, true, err
	}
	return info, true, unsafeImage("vmdk", "VMDK descriptor files are not supported; upload a monolithicSparse or streamOptimized VMDK")
}

func hasExtentLine(lower string) bool {
	for line := range strings.SplitSeq(lower, "\n") {
		if isExtentLine(strings.TrimSpace(line)) {
			return true
		}
	}
	return false
}

func isExtentLine(line string) bool {
	first, _, _ := strings.Cut(line, " ")
	return first == "rw" || first == "rdonly" || first == "noaccess"
}

// checkVMDKDescriptor parses a descriptor cautiously, as OpenStack's
// format inspector does: every line must be a comment, a ddb entry, a
// header field or an extent. An embedded descriptor (of a sparse file,
// whose own data qemu reads) may name its extent, but never a path; a
// descriptor file may name no file at all.
func checkVMDKDescriptor(desc string, embedded bool) error {
	lower := strings.ToLower(desc)
	createType := ""
	extents := 0
	for raw := range strings.SplitSeq(lower, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "ddb"):
		case isExtentLine(line):
			extents++
			name := extentFile(line)
			if !embedded && name != "" {
				return unsafeImage("vmdk", "the VMDK descriptor references the file %q", truncate(name, 100))
			}
			if strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
				return unsafeImage("vmdk", "the VMDK descriptor references the path %q", truncate(name, 100))
			}
		case strings.Contains(line, "=") && !strings.Contains(strings.SplitN(line, "=", 2)[0], " "):
			k, v, _ := strings.Cut(line, "=")
			switch strings.TrimSpace(k) {
			case "createtype":
				createType = strings.Trim(strings.TrimSpace(v), `"`)
			case "parentfilenamehint":
				// qemu opens the hinted file as the backing file.
				return unsafeImage("vmdk", "the VMDK image names a parent (backing) file")
			}
		default:
			return unsafeImage("vmdk", "invalid VMDK descriptor line %q", truncate(line, 100))
		}
	}
	if !embedded {
		return nil
	}
	if createType != "monolithicsparse" && createType != "streamoptimized" {
		return unsafeImage("vmdk", "unsupported VMDK subformat %q; only monolithicSparse and streamOptimized are accepted", truncate(createType, 64))
	}
	if extents == 0 {
		return unsafeImage("vmdk", "the VMDK descriptor has no extents")
	}
	return nil
}

// extentFile is the quoted file name of an extent line, "" when it has
// none (a ZERO extent).
func extentFile(line string) string {
	i := strings.IndexByte(line, '"')
	if i < 0 {
		return ""
	}
	rest := line[i+1:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return rest
	}
	return rest[:j]
}

// --- VHD, VHDX, VDI ---

func detectVHD(footer []byte) (FormatInfo, error) {
	info := FormatInfo{Format: "vhd"}
	if len(footer) < sector {
		return info, unsafeImage("vhd", "truncated VHD footer")
	}
	be := binary.BigEndian
	switch be.Uint32(footer[60:]) {
	case vhdFixed, vhdDynamic:
	case vhdDifferencing:
		return info, unsafeImage("vhd", "differencing VHD images (with a parent disk) are not supported")
	default:
		return info, unsafeImage("vhd", "unknown VHD disk type")
	}
	vsize := be.Uint64(footer[48:])
	if vsize > math.MaxInt64 {
		return info, unsafeImage("vhd", "invalid VHD size")
	}
	info.VirtualSize = int64(vsize)
	return info, nil
}

func detectVHDX(r io.ReaderAt, size int64) (FormatInfo, error) {
	info := FormatInfo{Format: "vhdx"}
	bad := func(msg string) (FormatInfo, error) { return info, unsafeImage("vhdx", "%s", msg) }
	le := binary.LittleEndian
	table, err := readAt(r, vhdxRegionTableOff, vhdxTableMax, size)
	if err != nil {
		return info, err
	}
	if len(table) < 16 || string(table[:4]) != "regi" {
		return bad("the VHDX region table is missing")
	}
	count := int(le.Uint32(table[8:]))
	if count > 2047 || 16+count*32 > len(table) {
		return bad("invalid VHDX region table")
	}
	var metaOff int64 = -1
	for i := range count {
		e := table[16+i*32 : 16+(i+1)*32]
		if bytes.Equal(e[:16], vhdxMetadataRegion[:]) {
			off := le.Uint64(e[16:])
			if off > math.MaxInt64 {
				return bad("invalid VHDX metadata region")
			}
			metaOff = int64(off)
			break
		}
	}
	if metaOff < 0 {
		return bad("the VHDX metadata region is missing")
	}
	meta, err := readAt(r, metaOff, vhdxTableMax, size)
	if err != nil {
		return info, err
	}
	if len(meta) < 32 || string(meta[:8]) != "metadata" {
		return bad("invalid VHDX metadata table")
	}
	n := int(le.Uint16(meta[10:]))
	if n > 2047 || 32+n*32 > len(meta) {
		return bad("invalid VHDX metadata table")
	}
	item := func(off uint32, length int) ([]byte, error) {
		b, err := readAt(r, metaOff+int64(off), int64(length), size)
		if err == nil && len(b) < length {
			_, err = bad("truncated VHDX metadata item")
		}
		return b, err
	}
	foundSize := false
	for i := range n {
		e := meta[32+i*32 : 32+(i+1)*32]
		off := le.Uint32(e[16:])
		switch {
		case bytes.Equal(e[:16], vhdxParentLocator[:]):
			return bad("differencing VHDX images (with a parent disk) are not supported")
		case bytes.Equal(e[:16], vhdxFileParams[:]):
			b, err := item(off, 8)
			if err != nil {
				return info, err
			}
			if le.Uint32(b[4:])&2 != 0 {
				return bad("differencing VHDX images (with a parent disk) are not supported")
			}
		case bytes.Equal(e[:16], vhdxVirtualSize[:]):
			b, err := item(off, 8)
			if err != nil {
				return info, err
			}
			v := le.Uint64(b)
			if v > math.MaxInt64 {
				return bad("invalid VHDX virtual size")
			}
			info.VirtualSize, foundSize = int64(v), true
		}
	}
	if !foundSize {
		return bad("the VHDX virtual size is missing")
	}
	return info, nil
}

func detectVDI(hdr []byte) (FormatInfo, error) {
	info := FormatInfo{Format: "vdi"}
	if len(hdr) < 0x178 {
		return info, unsafeImage("vdi", "truncated VDI header")
	}
	le := binary.LittleEndian
	switch le.Uint32(hdr[0x4c:]) {
	case vdiNormal, vdiFixed:
	default:
		return info, unsafeImage("vdi", "only normal and fixed VDI images are supported")
	}
	v := le.Uint64(hdr[0x170:])
	if v > math.MaxInt64 {
		return info, unsafeImage("vdi", "invalid VDI size")
	}
	info.VirtualSize = int64(v)
	return info, nil
}

// --- ISO ---

// isISO looks for an ISO 9660 or UDF volume descriptor in the volume
// recognition area after the 32 KiB system area.
func isISO(r io.ReaderAt, size int64) (bool, error) {
	for off := int64(0x8000); off <= 0x9800; off += 0x800 {
		b, err := readAt(r, off+1, 5, size)
		if err != nil {
			return false, err
		}
		switch string(b) {
		case "CD001", "BEA01", "NSR02", "NSR03":
			return true, nil
		}
	}
	return false, nil
}

// --- helpers ---

// isText reports whether b looks like ASCII text, as a VMDK descriptor does.
func isText(b []byte) bool {
	if len(b) == 0 || b[0] == 0 {
		return false
	}
	for _, c := range b {
		if c == 0 {
			break
		}
		if c >= 0x7f || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// guid encodes a Microsoft GUID string in its on-disk byte order: the
// first three fields little-endian, the rest as written.
func guid(s string) [16]byte {
	var out [16]byte
	h := strings.ReplaceAll(s, "-", "")
	var raw [16]byte
	for i := range 16 {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &raw[i])
	}
	out[0], out[1], out[2], out[3] = raw[3], raw[2], raw[1], raw[0]
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out
}
