// The sound alarm: a short WebAudio beep for a new incident (or a new order, on the phone).
// On or off is remembered in localStorage; browsers let sound start only after a user gesture,
// so the first click or key press on the page unlocks it.

const KEY = "fw.sound";
let ctx = null;

function unlock() {
  if (!ctx) ctx = new AudioContext();
  if (ctx.state === "suspended") ctx.resume();
}

export function enabled() {
  return localStorage.getItem(KEY) === "on";
}

export function initAlarm(checkbox) {
  checkbox.checked = enabled();
  checkbox.addEventListener("change", () => {
    localStorage.setItem(KEY, checkbox.checked ? "on" : "off");
    if (checkbox.checked) beep();
  });
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, () => enabled() && unlock(), { once: true });
  }
}

export function beep() {
  if (!enabled()) return;
  unlock();
  const start = ctx.currentTime;
  for (const at of [0, 0.25]) {
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.type = "square";
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, start + at);
    gain.gain.exponentialRampToValueAtTime(0.2, start + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.18);
    tone.connect(gain).connect(ctx.destination);
    tone.start(start + at);
    tone.stop(start + at + 0.2);
  }
  // observable by a test or an operator's devtools: how many alarms sounded
  const html = document.documentElement;
  html.dataset.alarms = String(Number(html.dataset.alarms || 0) + 1);
}
