// Keeps a scrolling list pinned to its newest (bottom) item while the reader is there: when the list gets
// shorter (the on-screen keyboard opens, the composer grows) and when content below loads late (an image).

const NEAR_PX = 80;

export function stickToBottom(list) {
  let atBottom = true;
  const measure = () => { atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_PX; };
  const keep = () => { if (atBottom) list.scrollTop = list.scrollHeight; };
  list.addEventListener("scroll", measure, { passive: true });
  new ResizeObserver(keep).observe(list);
  return {
    get atBottom() { return atBottom; },
    /** Call after adding content that grows later (an image's load): the view stays at the bottom if it was. */
    keep,
  };
}
