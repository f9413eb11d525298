// Nimbus console page: reads the single-use token from this page's URL,
// opens /console/websockify on this host with it and runs noVNC's RFB
// client in #screen. Loaded as an external module: the page's CSP allows
// no inline script.
import RFB from '/static/vendor/novnc/core/rfb.js';

const statusEl = document.getElementById('status');
const nameEl = document.getElementById('name');
const screenEl = document.getElementById('screen');
const cadBtn = document.getElementById('cad');
const fullBtn = document.getElementById('fullscreen');

function setStatus(state, text) {
    document.body.dataset.state = state;
    statusEl.textContent = text;
}

// consoleToken takes ?token=, or the token inside a Nova-style
// ?path=websockify%3Ftoken%3D... link. Only the token is taken from path:
// the socket always goes to this host's /console/websockify.
function consoleToken(params) {
    const token = params.get('token');
    if (token) {
        return token;
    }
    const path = params.get('path');
    if (!path) {
        return '';
    }
    try {
        return new URL(path, window.location.origin + '/console/').searchParams.get('token') || '';
    } catch {
        return '';
    }
}

function socketURL(token) {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + window.location.host + '/console/websockify?token=' + encodeURIComponent(token);
}

function connect() {
    const params = new URLSearchParams(window.location.search);
    const token = consoleToken(params);
    // The token is single-use: keep it out of the history and a reload.
    window.history.replaceState(null, '', window.location.pathname);
    if (!token) {
        setStatus('failed', 'No console token: open the console from the instance page.');
        return;
    }

    setStatus('connecting', 'Connecting…');
    let rfb;
    try {
        rfb = new RFB(screenEl, socketURL(token), { wsProtocols: ['binary'] });
    } catch (err) {
        setStatus('failed', 'Cannot start the console: ' + err.message);
        return;
    }
    rfb.scaleViewport = true;
    rfb.resizeSession = false;

    rfb.addEventListener('connect', () => {
        setStatus('connected', 'Connected');
        cadBtn.disabled = false;
        rfb.focus();
    });
    rfb.addEventListener('disconnect', (e) => {
        cadBtn.disabled = true;
        if (e.detail.clean) {
            setStatus('disconnected', 'Disconnected. Open the console again from the instance page.');
        } else {
            setStatus('failed', 'Connection refused or lost. Open the console again from the instance page.');
        }
    });
    rfb.addEventListener('credentialsrequired', () => {
        setStatus('failed', 'The console asks for a password, which Nimbus consoles do not use.');
        rfb.disconnect();
    });
    rfb.addEventListener('securityfailure', (e) => {
        setStatus('failed', 'Console security negotiation failed' + (e.detail.reason ? ': ' + e.detail.reason : '.'));
    });
    rfb.addEventListener('desktopname', (e) => {
        nameEl.textContent = e.detail.name;
        document.title = e.detail.name + ' · Console';
    });

    cadBtn.addEventListener('click', () => {
        rfb.sendCtrlAltDel();
        rfb.focus();
    });
}

function setupFullscreen() {
    if (!document.fullscreenEnabled) {
        // Framed without allow="fullscreen", or an old browser.
        fullBtn.hidden = true;
        return;
    }
    fullBtn.addEventListener('click', () => {
        if (document.fullscreenElement) {
            document.exitFullscreen().catch(() => {});
        } else {
            document.documentElement.requestFullscreen().catch(() => {});
        }
    });
    document.addEventListener('fullscreenchange', () => {
        fullBtn.textContent = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
    });
}

setupFullscreen();
connect();
