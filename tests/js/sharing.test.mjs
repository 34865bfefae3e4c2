import assert from "node:assert/strict";
import { test } from "node:test";

import { absoluteUrl, embedSnippet } from "../../static/js/sharing.js";

test("the snippet opens the embed at the step, its attributes escaped", () => {
  const s = embedSnippet("http://127.0.0.1:8000/embed/abc", 5, 'a "quoted" <title> & more');
  assert.match(s, /^<iframe src="http:\/\/127\.0\.0\.1:8000\/embed\/abc\?step=5" /);
  assert.ok(s.includes('title="a &quot;quoted&quot; &lt;title> &amp; more"'));
  assert.ok(s.includes('allow="fullscreen"'));
  assert.ok(s.endsWith("></iframe>"));
});

test("a step already in the URL is replaced, not repeated", () => {
  const s = embedSnippet("http://h/embed/abc?step=2&theme=dark", 9);
  assert.ok(s.includes("/embed/abc?step=9&amp;theme=dark"));
});

test("a relative link from the API is made absolute on the page's origin; an absolute one is kept", () => {
  assert.equal(absoluteUrl("/s/abc", "http://127.0.0.1:8000"), "http://127.0.0.1:8000/s/abc");
  assert.equal(absoluteUrl("/embed/abc", "https://class.example:8443"), "https://class.example:8443/embed/abc");
  assert.equal(absoluteUrl("https://gradwalk.example.org/s/abc", "http://127.0.0.1:8000"), "https://gradwalk.example.org/s/abc");
  const s = embedSnippet(absoluteUrl("/embed/abc", "http://127.0.0.1:8000"), 3);
  assert.match(s, /^<iframe src="http:\/\/127\.0\.0\.1:8000\/embed\/abc\?step=3" /);
});
