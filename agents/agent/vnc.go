package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// upgrader needs no Origin check: the handshake is signed by the
// controller, which no browser can forge.
var upgrader = websocket.Upgrader{
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// handleVNC upgrades to a websocket and pipes raw bytes between it and the
// instance's VNC server on the loopback.
func (a *agent) handleVNC(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	port, err := a.driver.VNCPort(r.Context(), uuid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if port <= 0 {
		a.fail(w, r, fault.Conflictf("Instance %s has no console right now.", uuid))
		return
	}
	var d net.Dialer
	tcp, err := d.DialContext(r.Context(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		a.fail(w, r, fault.Wrap(fault.Conflict, err, "The instance's console is not answering."))
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		tcp.Close() // Upgrade already answered the client
		return
	}
	a.log.Info("vnc tunnel opened", "uuid", uuid, "request_id", r.Header.Get("X-Openstack-Request-Id"))
	// A hijacked connection outlives http.Server.Shutdown; the agent's end
	// closes it.
	stop := context.AfterFunc(a.ctx, func() { tcp.Close() })
	defer stop()
	pipeVNC(ws, tcp)
}

// pipeVNC copies both ways until either side ends, then closes both.
func pipeVNC(ws *websocket.Conn, tcp net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			_, rd, err := ws.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(tcp, rd); err != nil {
				return
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := tcp.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = ws.WriteControl(websocket.CloseMessage,
						websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				}
				return
			}
		}
	}()
	<-done
	tcp.Close()
	ws.Close()
	<-done
}
