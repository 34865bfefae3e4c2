// English and Simplified Chinese. The server picks the first language (cookie, else Accept-Language);
// the toggle stores the choice in the same cookie so every page keeps it.

const STRINGS = {
  en: {
    "run.button": "Run",
    "run.cancel": "Cancel",
    "run.running": "Running… {s} s",
    "run.cancelled": "Run cancelled.",
    "run.failed": "The server could not run the program: {message}",
    "run.busy": "The server is busy. Try again in {s} s.",
    "run.network": "Could not reach the server.",
    "examples.label": "Example",
    "examples.custom": "Your program",
    "code.heading": "Program",
    "output.heading": "Output",
    "output.empty": "Nothing printed yet.",
    "output.line": "line {n}",
    "graph.heading": "Autograd graph",
    "graph.empty": "Press Run to trace the program and draw its autograd graph.",
    "graph.none": "This program built no autograd graph (no tensor requires grad).",
    "graph.error": "The program stopped before it built an autograd graph: see the error in the editor.",
    "graph.fit": "Fit",
    "graph.fanin": "Σ {n} grads",
    "legend.leaf": "leaf",
    "legend.op": "operation (grad_fn)",
    "legend.constant": "constant",
    "legend.forward": "forward: value",
    "legend.backward": "backward: ∂ gradient, grad = .grad",
    "graph.zoomIn": "Zoom in",
    "graph.zoomOut": "Zoom out",
    "graph.direction": "Switch layout direction",
    "graph.region": "Autograd graph: drag to pan, scroll to zoom",
    "player.controls": "Player",
    "player.first": "First step",
    "player.back": "Step back",
    "player.play": "Play",
    "player.pause": "Pause",
    "player.forward": "Step forward",
    "player.last": "Last step",
    "player.scrubber": "Step",
    "player.speed": "Speed",
    "player.jump": "Jump to",
    "player.jumpNone": "—",
    "player.forwardPass": "Forward pass",
    "player.passN": "Backward pass {n} of {of}",
    "player.step": "Step {n} / {total}",
    "caption.start": "Press ▶ (or Space) to play the program; ← and → go one step at a time.",
    "caption.node.leaf": "{name} is created: a leaf tensor{rg}.",
    "caption.node.rg": " that requires grad",
    "caption.node.constant": "{name} is created: a constant (no gradient flows into it).",
    "caption.node.op": "{name} = {sym} is computed; autograd records {op} to differentiate it later.",
    "caption.print": "print() writes to the output.",
    "caption.display": "The expression's value is shown in the output.",
    "caption.warning": "PyTorch warns: {text}",
    "caption.backward_start": "{api} starts backward pass {n} of {of}, seeded with gradient {g}.",
    "caption.step.leaf": "AccumulateGrad: {name}.grad += {g}",
    "caption.step.op": "{who} receives the gradient {g} and sends one to each of its inputs.",
    "caption.step.fanin": "{n} gradients arrived and were summed.",
    "caption.backward_end": "Backward pass {n} of {of} is done.",
    "caption.grad": "{name}.grad is set to {g} outside backward (e.g. .grad.zero_()).",
    "caption.update": "{name} is changed in place (e.g. optimizer.step()): now {v}.",
    "caption.requiresGrad": "{name}.requires_grad_(): from now on autograd tracks {name}; it is a leaf.",
    "caption.error": "The program stopped with an error.",
    "caption.end": "The program finished.",
    "status.timeout": "The program ran too long and was stopped.",
    "status.memory": "The program used too much memory and was stopped.",
    "status.killed": "The program was stopped by the sandbox (it tried something that is not allowed here).",
    "status.truncated": "The trace was shortened: {notice}",
    "inspector.heading": "Inspector",
    "inspector.empty": "Click a node to see its value, its gradient and the derivative of its operation.",
    "inspector.kind.leaf": "leaf tensor",
    "inspector.kind.op": "result of an operation",
    "inspector.kind.constant": "constant (requires_grad=False)",
    "inspector.shape": "shape",
    "inspector.dtype": "dtype",
    "inspector.line": "line",
    "inspector.op": "grad_fn",
    "inspector.requiresGrad": "requires_grad",
    "inspector.copies": "drawn",
    "inspector.copiesN": "{n} times (once per use)",
    "inspector.value": "Value",
    "inspector.grad": ".grad (now)",
    "inspector.gradNone": "None",
    "inspector.gradNonLeaf": "None — not a leaf, so autograd frees its gradient (call .retain_grad() to keep it).",
    "inspector.flow": "Gradient of this pass (∂ output / ∂ this)",
    "inspector.derivative": "Local derivative",
    "inspector.received": "{n} gradients arrived (autograd adds them up)",
    "inspector.stats": "min {min} · max {max} · mean {mean} · std {std} ({numel} elements)",
    "inspector.notYet": "Not computed yet at this step.",
    "inspector.sum": "summed over {n} elements (broadcast)",
    "inspector.barNote": "x̄ is the gradient arriving at x in the last backward pass shown (∂ root / ∂ x).",
    "share.editCopy": "Edit a copy",
  },
  zh: {
    "run.button": "运行",
    "run.cancel": "取消",
    "run.running": "运行中… {s} 秒",
    "run.cancelled": "已取消运行。",
    "run.failed": "服务器无法运行该程序：{message}",
    "run.busy": "服务器繁忙，请 {s} 秒后重试。",
    "run.network": "无法连接服务器。",
    "examples.label": "示例",
    "examples.custom": "你的程序",
    "code.heading": "程序",
    "output.heading": "输出",
    "output.empty": "尚无输出。",
    "output.line": "第 {n} 行",
    "graph.heading": "自动求导图",
    "graph.empty": "点击“运行”来追踪程序并画出它的自动求导图。",
    "graph.none": "这个程序没有构建自动求导图（没有张量需要梯度）。",
    "graph.error": "程序在构建自动求导图之前就停止了：错误信息见编辑器。",
    "graph.fit": "适应窗口",
    "graph.fanin": "Σ {n} 个梯度",
    "legend.leaf": "叶子张量",
    "legend.op": "运算（grad_fn）",
    "legend.constant": "常量",
    "legend.forward": "前向：值",
    "legend.backward": "反向：∂ 梯度，grad 即 .grad",
    "graph.zoomIn": "放大",
    "graph.zoomOut": "缩小",
    "graph.direction": "切换布局方向",
    "graph.region": "自动求导图：拖动平移，滚轮缩放",
    "player.controls": "播放器",
    "player.first": "第一步",
    "player.back": "后退一步",
    "player.play": "播放",
    "player.pause": "暂停",
    "player.forward": "前进一步",
    "player.last": "最后一步",
    "player.scrubber": "步骤",
    "player.speed": "速度",
    "player.jump": "跳转到",
    "player.jumpNone": "—",
    "player.forwardPass": "前向传播",
    "player.passN": "反向传播 第 {n} 次（共 {of} 次）",
    "player.step": "第 {n} 步 / 共 {total} 步",
    "caption.start": "按 ▶（或空格键）播放程序；← 和 → 一次走一步。",
    "caption.node.leaf": "创建了 {name}：一个叶子张量{rg}。",
    "caption.node.rg": "，需要梯度",
    "caption.node.constant": "创建了 {name}：一个常量（梯度不会流入它）。",
    "caption.node.op": "计算 {name} = {sym}；autograd 记录 {op} 以便之后求导。",
    "caption.print": "print() 输出到输出区。",
    "caption.display": "表达式的值显示在输出区。",
    "caption.warning": "PyTorch 警告：{text}",
    "caption.backward_start": "{api} 开始第 {n} 次反向传播（共 {of} 次），初始梯度为 {g}。",
    "caption.step.leaf": "AccumulateGrad：{name}.grad += {g}",
    "caption.step.op": "{who} 收到梯度 {g}，并把梯度传给它的每个输入。",
    "caption.step.fanin": "{n} 个梯度到达并被求和。",
    "caption.backward_end": "第 {n} 次反向传播（共 {of} 次）完成。",
    "caption.grad": "{name}.grad 在反向传播之外被设为 {g}（例如 .grad.zero_()）。",
    "caption.update": "{name} 被原地修改（例如 optimizer.step()）：现在是 {v}。",
    "caption.requiresGrad": "{name}.requires_grad_()：从现在起 autograd 追踪 {name}，它是一个叶子张量。",
    "caption.error": "程序因错误而停止。",
    "caption.end": "程序运行结束。",
    "status.timeout": "程序运行时间过长，已被停止。",
    "status.memory": "程序使用内存过多，已被停止。",
    "status.killed": "程序被沙箱停止（它尝试了此处不允许的操作）。",
    "status.truncated": "追踪记录被截断：{notice}",
    "inspector.heading": "检查器",
    "inspector.empty": "点击一个节点，查看它的值、梯度和该运算的局部导数。",
    "inspector.kind.leaf": "叶子张量",
    "inspector.kind.op": "运算的结果",
    "inspector.kind.constant": "常量（requires_grad=False）",
    "inspector.shape": "形状",
    "inspector.dtype": "类型",
    "inspector.line": "行",
    "inspector.op": "grad_fn",
    "inspector.requiresGrad": "requires_grad",
    "inspector.copies": "绘制",
    "inspector.copiesN": "{n} 次（每次使用画一次）",
    "inspector.value": "值",
    "inspector.grad": ".grad（当前）",
    "inspector.gradNone": "None",
    "inspector.gradNonLeaf": "None —— 不是叶子张量，autograd 会释放它的梯度（调用 .retain_grad() 可保留）。",
    "inspector.flow": "本次反向传播的梯度（∂ 输出 / ∂ 此节点）",
    "inspector.derivative": "局部导数",
    "inspector.received": "到达了 {n} 个梯度（autograd 把它们相加）",
    "inspector.stats": "最小 {min} · 最大 {max} · 均值 {mean} · 标准差 {std}（{numel} 个元素）",
    "inspector.notYet": "这一步还没有计算。",
    "inspector.sum": "对 {n} 个元素求和（广播）",
    "inspector.barNote": "x̄ 表示所显示的反向传播中到达 x 的梯度（∂ 根 / ∂ x）。",
    "share.editCopy": "编辑副本",
    // The tracer's hints (app/tracer/hints.py), by hint_id; English comes with the trace.
    "hint.int_requires_grad": "只有浮点张量才能求梯度：把数值写成浮点数（torch.tensor([1.0, 2.0, 3.0], requires_grad=True)），或传入 dtype=torch.float32。",
    "hint.nonscalar_backward": "不带参数的 backward() 需要一个标量：先把输出归约（y.sum()），或传入与输出同形状的梯度，例如 y.backward(torch.ones_like(y))。",
    "hint.backward_twice": "第一次 backward() 已经释放了计算图保存的值；在前一次调用中传入 retain_graph=True，才能再次对同一张图反向传播。",
    "hint.inplace_saved": "autograd 为反向传播保存的张量之后被原地修改了；请用非原地写法（x = x * 2 而不是 x *= 2），或先 clone()。",
    "hint.leaf_inplace": "需要梯度的叶子张量在 autograd 记录时不能被原地修改；请在 `with torch.no_grad():` 中更新它。",
    "hint.no_grad_fn": "这里没有任何张量需要梯度，所以没有可以反向传播的图：用 requires_grad=True 创建输入（并且不要在 torch.no_grad() 中）。",
    "hint.nonleaf_grad": "只有叶子张量（你用 requires_grad=True 创建的）会保存 .grad；中间结果的梯度会被 autograd 释放。在 backward() 之前对它调用 .retain_grad() 可以保留。",
    "hint.grad_dtype": "只有浮点结果才有梯度：请把张量改为浮点类型。",
  },
};

let current = "en";

export function lang() {
  return current;
}

export function setLang(l) {
  current = l === "zh" ? "zh" : "en";
}

/** The string for `key` in the current language, with {name} placeholders filled (as text). */
export function t(key, vars = {}) {
  const s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

/** A trace hint in the current language: a translation by its hint_id, else the tracer's English. */
export function hint(hintId, english) {
  if (current !== "en" && hintId && STRINGS[current][`hint.${hintId}`]) return STRINGS[current][`hint.${hintId}`];
  return english ?? null;
}

/** Fill every element marked data-i18n (text) or data-i18n-aria (aria-label) under root. */
export function apply(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  document.documentElement.lang = current === "zh" ? "zh-Hans" : "en";
  document.documentElement.dataset.lang = current;
}

/** Remember the choice for the server's next page (same cookie it reads). */
export function persist() {
  document.cookie = `lang=${current}; path=/; max-age=31536000; samesite=lax`;
  try {
    localStorage.setItem("gradwalk.lang", current);
  } catch {
    /* storage may be disabled: the cookie is enough */
  }
}

export const KEYS = { en: Object.keys(STRINGS.en), zh: Object.keys(STRINGS.zh) };
