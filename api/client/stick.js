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
    /** Call when an element grew late (an image's load): the view stays at the bottom if it was there before the
     *  element grew. The scroll that put it there may be measured only after the growth (a re-render scrolls to the
     *  bottom, the image loads, then the scroll event runs), so that measure alone would say "scrolled away". */
    grew(element) {
      if (!atBottom && list.scrollHeight - element.offsetHeight - list.scrollTop - list.clientHeight >= NEAR_PX) return;
      atBottom = true;
      list.scrollTop = list.scrollHeight;
    },
  };
}
