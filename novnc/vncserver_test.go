package novnc

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
)

// vncServer is a tiny RFB 3.8 server: security type None, a 64x48 32 bpp
// framebuffer, a full raw update for every non-incremental update request
// (incremental ones are held, as for a static screen), key events reported
// on keys; any message type it does not know makes it hang up.
type vncServer struct {
	ln          net.Listener
	name        string
	keys        chan uint32
	disconnects chan struct{}
}

const (
	fbWidth  = 64
	fbHeight = 48
)

func startVNC(t *testing.T) *vncServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &vncServer{ln: ln, name: "nimbus-test-vm", keys: make(chan uint32, 16), disconnects: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { s.disconnects <- struct{}{} }()
				defer c.Close()
				_ = s.serve(c)
			}()
		}
	}()
	return s
}

func (s *vncServer) addr() string { return s.ln.Addr().String() }

func (s *vncServer) serve(c net.Conn) error {
	if _, err := io.WriteString(c, "RFB 003.008\n"); err != nil {
		return err
	}
	ver := make([]byte, 12)
	if _, err := io.ReadFull(c, ver); err != nil {
		return err
	}
	if !strings.HasPrefix(string(ver), "RFB 003.") {
		return io.ErrUnexpectedEOF
	}
	if _, err := c.Write([]byte{1, 1}); err != nil { // one type: None
		return err
	}
	choice := make([]byte, 1)
	if _, err := io.ReadFull(c, choice); err != nil || choice[0] != 1 {
		return io.ErrUnexpectedEOF
	}
	if _, err := c.Write([]byte{0, 0, 0, 0}); err != nil { // SecurityResult OK
		return err
	}
	if _, err := io.ReadFull(c, choice); err != nil { // ClientInit
		return err
	}
	if _, err := c.Write(serverInit(s.name)); err != nil {
		return err
	}
	for {
		typ := make([]byte, 1)
		if _, err := io.ReadFull(c, typ); err != nil {
			return err
		}
		switch typ[0] {
		case 0: // SetPixelFormat
			if err := skip(c, 19); err != nil {
				return err
			}
		case 2: // SetEncodings
			hdr := make([]byte, 3)
			if _, err := io.ReadFull(c, hdr); err != nil {
				return err
			}
			if err := skip(c, 4*int(binary.BigEndian.Uint16(hdr[1:]))); err != nil {
				return err
			}
		case 3: // FramebufferUpdateRequest
			req := make([]byte, 9)
			if _, err := io.ReadFull(c, req); err != nil {
				return err
			}
			if req[0] == 0 {
				if _, err := c.Write(fullUpdate()); err != nil {
					return err
				}
			}
		case 4: // KeyEvent
			ev := make([]byte, 7)
			if _, err := io.ReadFull(c, ev); err != nil {
				return err
			}
			select {
			case s.keys <- binary.BigEndian.Uint32(ev[3:]):
			default:
			}
		case 5: // PointerEvent
			if err := skip(c, 5); err != nil {
				return err
			}
		case 6: // ClientCutText
			hdr := make([]byte, 7)
			if _, err := io.ReadFull(c, hdr); err != nil {
				return err
			}
			n := binary.BigEndian.Uint32(hdr[3:])
			if n > 1<<20 {
				return io.ErrUnexpectedEOF
			}
			if err := skip(c, int(n)); err != nil {
				return err
			}
		default:
			return io.ErrUnexpectedEOF
		}
	}
}

func skip(r io.Reader, n int) error {
	_, err := io.CopyN(io.Discard, r, int64(n))
	return err
}

// serverInit is the ServerInit message: size, a 32 bpp true-colour pixel
// format (little-endian BGRX, red at bit 16) and the desktop name.
func serverInit(name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, fbWidth)
	b = binary.BigEndian.AppendUint16(b, fbHeight)
	b = append(b, 32, 24, 0, 1) // bpp, depth, big-endian, true-colour
	b = binary.BigEndian.AppendUint16(b, 255)
	b = binary.BigEndian.AppendUint16(b, 255)
	b = binary.BigEndian.AppendUint16(b, 255)
	b = append(b, 16, 8, 0, 0, 0, 0) // shifts, padding
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	return append(b, name...)
}

// fullUpdate is a FramebufferUpdate with one raw rectangle covering the
// screen: a gradient, so a browser screenshot shows something.
func fullUpdate() []byte {
	b := []byte{0, 0, 0, 1} // type, padding, one rectangle
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, fbWidth)
	b = binary.BigEndian.AppendUint16(b, fbHeight)
	b = append(b, 0, 0, 0, 0) // raw encoding
	for y := range fbHeight {
		for x := range fbWidth {
			b = append(b, byte(y*5), byte(x*4), 0x40, 0) // B, G, R, X
		}
	}
	return b
}
