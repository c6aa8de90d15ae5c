// mqchat-embed.js, for a host page on another origin: puts the web client in an iframe and hands it
// the platform's token with postMessage (never in a URL). See docs/web-embed.md.
//
//   <script src="https://chat.example.com/client/mqchat-embed.js"></script>
//   mqchat.mount(element, { getPlatformToken: async () => token });   // or { platformToken: "..." }

(() => {
  const clientUrl = new URL("./?embed=1", document.currentScript.src);
  const origin = clientUrl.origin;

  /**
   * Fill `element` with the client. options: platformToken (a string) or getPlatformToken (async, called
   * each time the client needs a token), onEvent(message) for what the client tells the page.
   * Returns {frame, unmount()}.
   */
  function mount(element, { platformToken, getPlatformToken, onEvent = () => {} } = {}) {
    const token = getPlatformToken ?? (async () => platformToken);
    const frame = document.createElement("iframe");
    frame.src = clientUrl.href;
    frame.title = "Chat";
    frame.style.cssText = "width: 100%; height: 100%; border: 0";
    // Sent to the client's origin only, each time it loads and whenever it asks.
    const handOver = async () => frame.contentWindow?.postMessage({ type: "mqchat:token", token: await token() }, origin);
    const listen = (event) => {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      if (event.data?.type === "mqchat:token-needed") handOver();
      onEvent(event.data);
    };
    frame.addEventListener("load", handOver);
    window.addEventListener("message", listen);
    element.replaceChildren(frame);
    return { frame, unmount() { window.removeEventListener("message", listen); frame.remove(); } };
  }

  window.mqchat = Object.assign(window.mqchat ?? {}, { mount });
})();
