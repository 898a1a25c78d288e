// Applies the stored colour theme before the first paint (no flash of the wrong theme).
// A separate file rather than an inline script, so a strict Content-Security-Policy works.
try {
  var t = localStorage.getItem("camgate.theme");
  var dark = t === "dark" || (t !== "light" && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.classList.toggle("dark", dark);
} catch (e) {
  // Storage unavailable: the app applies the system theme once it starts.
}
