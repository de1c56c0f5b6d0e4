// range.js - the snapshot view's window in time and how finely to ask for
// it.  The server decimates (min/max per pixel column, or raw samples when
// the window holds few enough), so the page asks for one point per pixel of
// the window it shows and never holds a whole long snapshot.  Pure: no DOM.

// The narrowest window, in samples: below that a zoom would show nothing.
export const MIN_VIEW_SAMPLES = 8;
// Points asked for: the first, whole-snapshot answer is bounded tighter
// because it is on the path to a drawn page; later windows up to what the
// server accepts.
export const FIRST_PX_MAX = 2000;
export const VIEW_PX_MAX = 8192;
// Plot width when the layout has none yet (a hidden or unsized box).
const DEFAULT_WIDTH = 900;
const MIN_WIDTH = 400;
const DEFAULT_PX = 1000;

// Window [a, b] (seconds) kept inside [0, duration] and at least
// MIN_VIEW_SAMPLES wide; a window pushed past an end keeps its width.
export function clampView(a, b, duration, sampleRate) {
  const span = Math.max(b - a, MIN_VIEW_SAMPLES / sampleRate);
  const start = Math.max(0, Math.min(a, duration - span));
  return [start, Math.min(duration, start + span)];
}

// Zoom about the window's centre: f < 1 narrows it, f > 1 widens it.
export function zoomView([a, b], f) {
  const c = (a + b) / 2, w = (b - a) * f;
  return [c - w / 2, c + w / 2];
}

// Pan by a fraction of the window's width (negative: to earlier times).
export function panView([a, b], f) {
  const w = b - a;
  return [a + w * f, b + w * f];
}

// Width in CSS pixels to lay the plots out at.
export function plotWidth(clientWidth) {
  return Math.max(MIN_WIDTH, clientWidth || DEFAULT_WIDTH);
}

export function firstPx(width) {
  return Math.min(FIRST_PX_MAX, width);
}

// Points for a window drawn into a plot area of bboxWidth device pixels.
export function viewPx(bboxWidth, devicePixelRatio) {
  const px = Math.round(bboxWidth / devicePixelRatio) || DEFAULT_PX;
  return Math.min(VIEW_PX_MAX, px);
}

export function viewQuery([a, b], px) {
  return `from_s=${a}&to_s=${b}&px=${px}`;
}
