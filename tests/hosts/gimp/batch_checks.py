"""Runs inside real GIMP 3 (gimp-console-3.0, python-fu-eval): calls every Sfumato procedure
through the PDB and records what it sees in a JSON report for harness.py to judge.

Executed with exec(), so it reads its configuration from $SFUMATO_HOST_TEST (a JSON file):
image (PNG path), out (folder), address, ops (what the engine offers), relay_python.
"""
import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

CFG = json.load(open(os.environ["SFUMATO_HOST_TEST"]))
OUT = CFG["out"]
REPORT = {"checks": [], "gimp": Gimp.version(), "timings": {}}


# share of selected pixels that must differ from the source: exemplar synthesis copies pixels
# verbatim, so where a hole lies in a flat area many filled pixels equal the original ones
CHANGED_MIN = 0.2


def check(name, ok, detail=""):
    REPORT["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)[:500]})


def save_report():
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(REPORT, f, indent=1)


def marker(name, data=""):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(str(data))


def wait_marker(name, timeout=120):
    path = os.path.join(OUT, name)
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    return os.path.exists(path)


def read(drawable, x, y, w, h, fmt="R'G'B'A u8"):
    """Pixels of a drawable over an image-coordinate box."""
    offs = drawable.get_offsets()
    ox, oy = (offs[1], offs[2]) if len(offs) == 3 else offs
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(x - ox, y - oy, w, h), 1.0, fmt,
                                           Gegl.AbyssPolicy.NONE))


def selection_mask(image, x, y, w, h):
    return bytes(image.get_selection().get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, "Y u8",
                                                        Gegl.AbyssPolicy.NONE))


def compare(src, new, mask, bpp):
    """(new layer transparent wherever the mask is 0?, mean abs difference inside, changed fraction inside).

    The result layer holds only what the engine may change: unselected pixels are fully
    transparent, so the image outside the selection stays as it was (export_flat checks that).
    """
    clear_outside, diff_sum, n_in, n_changed = True, 0, 0, 0
    zero = bytes(bpp)
    for i, m in enumerate(mask):
        a, b = src[i * bpp:(i + 1) * bpp], new[i * bpp:(i + 1) * bpp]
        if m == 0:
            if b != zero:
                clear_outside = False
        elif m == 255:
            n_in += 1
            d = sum(abs(p - q) for p, q in zip(a, b))
            diff_sum += d
            n_changed += d > 0
    return clear_outside, diff_sum / max(1, n_in * bpp), n_changed / max(1, n_in)


def flat(image, fmt="R'G'B'A u8"):
    """The composite as a user sees (and exports) it."""
    dup = image.duplicate()
    layer = dup.flatten()
    data = bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, dup.get_width(), dup.get_height()), 1.0, fmt,
                                        Gegl.AbyssPolicy.NONE))
    dup.delete()
    return data


def composite_unchanged_outside(image, before, after, bpp):
    mask = selection_mask(image, 0, 0, image.get_width(), image.get_height())
    return all(before[i * bpp:(i + 1) * bpp] == after[i * bpp:(i + 1) * bpp] for i, m in enumerate(mask) if m == 0)


def call(name, image, drawables, **args):
    """Run a procedure the way a menu click does; return (status nick, error text, values)."""
    proc = Gimp.get_pdb().lookup_procedure(name)
    if proc is None:
        return "missing", f"procedure {name} is not registered", None
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    t0 = time.time()
    result = proc.run(cfg)
    REPORT["timings"][name + ":" + str(len(REPORT["timings"]))] = round(time.time() - t0, 2)
    status = result.index(0)
    error = ""
    if status != Gimp.PDBStatusType.SUCCESS:
        try:
            error = Gimp.PDB.get_last_error(Gimp.get_pdb())
        except Exception:
            error = ""
        if not error and result.length() > 1:
            try:
                error = str(result.index(1))
            except Exception:
                pass
    return status.value_nick, error, result


def layer_names(image):
    return [layer.get_name() for layer in image.get_layers()]


def run_pixel_op(label, proc, image, layer, sel, op, grow=0, **args):
    """Select, run, check the new layer, remove it again (the next op starts clean).

    `grow`: the op may change pixels this far outside the selection (Remove grows it)."""
    x, y, w, h = sel
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    before = layer_names(image)
    flat_before = flat(image)
    status, error, _ = call(proc, image, [layer], **args)
    if op not in CFG["ops"]:
        check(f"{label}: engine without '{op}' gives a readable error", status != "success"
              and "does not offer" in error and "Traceback" not in error, error)
        return None
    check(f"{label}: procedure succeeds", status == "success", error)
    if status != "success":
        return None
    after = image.get_layers()
    new = [lay for lay in after if lay.get_name() not in before]
    check(f"{label}: exactly one new layer", len(new) == 1, [lay.get_name() for lay in new])
    if len(new) != 1:
        return None
    new = new[0]
    check(f"{label}: new layer named after the op", new.get_name().startswith("Sfumato "), new.get_name())
    check(f"{label}: new layer directly above the source", image.get_item_position(new) + 1
          == image.get_item_position(layer), (image.get_item_position(new), image.get_item_position(layer)))
    offs = new.get_offsets()
    nx, ny = (offs[1], offs[2]) if len(offs) == 3 else offs
    nw, nh = new.get_width(), new.get_height()
    check(f"{label}: crop covers the selection plus context, not the canvas",
          nx <= x and ny <= y and nx + nw >= x + w and ny + nh >= y + h
          and nw * nh < image.get_width() * image.get_height(), (nx, ny, nw, nh))
    mask = selection_mask(image, nx, ny, nw, nh)
    src, res = read(layer, nx, ny, nw, nh), read(new, nx, ny, nw, nh)
    _, mad, changed = compare(src, res, mask, 4)
    where = f"the selection grown by {grow} px" if grow else "the selection"
    if grow:
        Gimp.Selection.grow(image, grow)
    same, _, _ = compare(src, res, selection_mask(image, nx, ny, nw, nh), 4)
    check(f"{label}: result layer transparent outside {where}", same)
    check(f"{label}: the image outside {where} unchanged (bit for bit)",
          composite_unchanged_outside(image, flat_before, flat(image), 4))
    if grow:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    check(f"{label}: pixels inside the selection changed", changed > CHANGED_MIN, f"changed {changed:.2f}, mad {mad:.1f}")
    REPORT.setdefault("changes", {})[label] = {"mean_abs_diff": round(mad, 2), "changed": round(changed, 3),
                                                "layer": [nx, ny, nw, nh], "name": new.get_name()}
    return new


def remove_with_source(image, layer, sel):
    """Remove with a channel as the source: white (the left 80 columns) = texture may come from here."""
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 80, image.get_height())
    channel = Gimp.Selection.save(image)
    channel.set_name("copy from")
    new = run_pixel_op("remove with source channel", "sfumato-remove-object", image, layer, sel, "inpaint", grow=8,
                       source_channel=channel, seed=5)
    if new is not None:
        offs = new.get_offsets()
        nx = offs[1] if len(offs) == 3 else offs[0]
        check("remove with source channel: the crop grew to hold the source (from the layer's left edge)",
              nx == 16, REPORT["changes"].get("remove with source channel"))
        image.remove_layer(new)
    image.remove_channel(channel)


def extend_check(sides, amount, unit, expect):
    """Extend Canvas on a fresh copy of the test picture: size, the old pixels, the new strip."""
    label = f"extend {sides} {amount} {unit}"
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(CFG["image"]))
    src = img.get_layers()[0]
    w, h = img.get_width(), img.get_height()
    flat_before = flat(img)
    status, error, _ = call("sfumato-extend-canvas", img, [src], sides=sides, amount=amount, unit=unit, steps=3,
                            seed=1)
    check(f"{label}: procedure succeeds", status == "success", error)
    if status != "success":
        img.delete()
        return
    left, top, nw, nh = expect
    check(f"{label}: the canvas is {nw}x{nh}", (img.get_width(), img.get_height()) == (nw, nh),
          (img.get_width(), img.get_height()))
    layers = img.get_layers()
    check(f"{label}: one new layer on top, named after the action", len(layers) == 2
          and layers[0].get_name().startswith("Sfumato Extend canvas"), layer_names(img))
    check(f"{label}: the source layer grew with the canvas", (src.get_width(), src.get_height()) == (nw, nh),
          (src.get_width(), src.get_height()))
    after = flat(img)
    same = all(after[((y + top) * nw + left) * 4:((y + top) * nw + left + w) * 4] == flat_before[y * w * 4:(y + 1) * w * 4]
               for y in range(h))
    check(f"{label}: the old picture unchanged (bit for bit)", same)
    if len(layers) == 2:
        data = read(layers[0], 0, 0, nw, nh)
        strip_alpha, strip_rgb, old_alpha = [], [], []
        for yy in range(nh):
            for xx in range(nw):
                i = (yy * nw + xx) * 4
                if left <= xx < left + w and top <= yy < top + h:
                    old_alpha.append(data[i + 3])
                else:
                    strip_alpha.append(data[i + 3])
                    strip_rgb.extend(data[i:i + 3])
        import statistics

        spread = statistics.pstdev(strip_rgb) if strip_rgb else 0.0
        REPORT.setdefault("extend", {})[label] = {"strip_pixels": len(strip_alpha), "lowest_alpha": min(strip_alpha or [0]),
                                                  "colour_std": round(spread, 1)}
        check(f"{label}: the new strip is filled and opaque", strip_alpha and min(strip_alpha) == 255 and spread > 5,
              REPORT["extend"][label])
        check(f"{label}: the fill layer is transparent over the old picture", not any(old_alpha))
    export_flat(img, os.path.join(OUT, f"extend-{sides}.png"))
    img.delete()


def new_rgba_image(w, h, pixel):
    """A new image with one RGBA layer whose pixels are pixel(x, y) -> (r, g, b, a)."""
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    data = bytes(v for y in range(h) for x in range(w) for v in pixel(x, y))
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B'A u8", data)
    buf.flush()
    return img, layer


MOTIF_RGBA = (230, 140, 30, 255)


def pat_file(folder, prefix):
    """(path, header words, name, pixels) of the newest .pat file in `folder` starting with `prefix`."""
    import struct

    found = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(".pat")),
                   key=os.path.getmtime) if os.path.isdir(folder) else []
    if not found:
        return None
    blob = open(found[-1], "rb").read()
    size, version, w, h, bpp, magic = struct.unpack(">5I4s", blob[:24])
    name = blob[24:size].split(b"\0", 1)[0].decode("utf-8")
    return found[-1], (size, version, w, h, bpp, magic), name, blob[size:]


def pattern_checks():
    """Pattern Repeat: a 15 px disc in a half-drop with spacing 5 (period 20 x 40), a 2 x 2 preview,
    the tile saved as a GIMP pattern; then Recolor with a palette and with a reference layer."""
    img, src = new_rgba_image(64, 48, lambda x, y: MOTIF_RGBA if (x - 20) ** 2 + (y - 18) ** 2 <= 49
                              else (0, 0, 0, 0) if x < 44 else (90, 90, 90, 255))  # a grey block: not selected
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 6, 30, 28)
    status, error, _ = call("sfumato-pattern", img, [src], layout="half-drop", spacing=5, preview=2, seed=3,
                            save_pattern=True)
    if "pattern" not in CFG["ops"]:
        check("pattern: engine without 'pattern' gives a readable error", status != "success"
              and "does not offer" in error, error)
        img.delete()
        return
    check("pattern: procedure succeeds", status == "success", error)
    layers = img.get_layers()
    check("pattern: two new layers (tile, preview) above the motif", len(layers) == 3
          and layers[0].get_name().startswith("Sfumato Pattern repeat tile (layout half-drop, seed 3")
          and layers[1].get_name().startswith("Sfumato Pattern repeat preview"), layer_names(img))
    if status != "success" or len(layers) != 3:
        img.delete()
        return
    tile, preview = layers[0], layers[1]
    offs = tile.get_offsets()
    tx, ty = (offs[1], offs[2]) if len(offs) == 3 else offs
    size = (tile.get_width(), tile.get_height())
    check("pattern: the tile is one half-drop period (40 x 20) at the selection's corner",
          size == (40, 20) and (tx, ty) == (8, 6), (size, tx, ty))
    check("pattern: the preview is 2 x 2 tiles", (preview.get_width(), preview.get_height()) == (80, 40),
          (preview.get_width(), preview.get_height()))
    px = read(tile, tx, ty, *size)
    alpha = px[3::4]
    opaque = [px[i * 4:i * 4 + 3] for i, a in enumerate(alpha) if a == 255]
    grey = sum(1 for p in opaque if p == bytes((90, 90, 90)))
    REPORT.setdefault("pattern", {})["tile"] = {"opaque": len(opaque), "pixels": len(alpha), "grey": grey}
    check("pattern: the tile holds the motif (not empty), on a transparent ground, without the unselected block",
          0.2 * len(alpha) < len(opaque) < len(alpha) and grey == 0 and min(alpha) == 0
          and all(abs(p[0] - 230) + abs(p[1] - 140) + abs(p[2] - 30) < 12 for p in opaque), REPORT["pattern"])
    folder = os.path.join(Gimp.directory(), "patterns")
    found = pat_file(folder, "sfumato-pattern-repeat-tile")
    check("pattern: the tile was saved as a .pat file in the user's patterns folder", found is not None, folder)
    if found is not None:
        path, (hsize, version, w, h, bpp, magic), name, pixels = found
        REPORT["pattern"]["pat"] = {"path": path, "header": [hsize, version, w, h, bpp, magic.decode()], "name": name}
        check("pattern: the .pat header is GIMP's (version 1, 40 x 20, RGBA, GPAT, the layer's name)",
              (version, w, h, bpp, magic) == (1, 40, 20, 4, b"GPAT") and hsize == 24 + len(name.encode()) + 1
              and name == tile.get_name(), REPORT["pattern"]["pat"])
        check("pattern: the .pat pixels are the tile's", pixels == px)
        pattern = Gimp.Pattern.get_by_name(name)
        info = pattern.get_info() if pattern is not None else None
        REPORT["pattern"]["gimp_info"] = str(info)
        check("pattern: GIMP lists the saved pattern after the refresh, 40 x 20 RGBA", info is not None
              and list(info)[-3:] == [40, 20, 4], info)
    img.delete()

    # Recolor: stripes of two colours, a rectangle selected, a two-colour palette
    stripes = lambda x, y: (40, 160, 40, 255) if (x // 5) % 2 == 0 else (220, 200, 200, 255)  # noqa: E731
    img, src = new_rgba_image(48, 32, stripes)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 4, 2, 30, 24)
    palette = [(0xb0, 0x10, 0x10), (0xf0, 0xe0, 0xa0)]
    status, error, _ = call("sfumato-recolor", img, [src], palette="#b01010,#f0e0a0", seed=1)
    check("recolor: procedure succeeds", status == "success", error)
    layers = img.get_layers()
    if status == "success" and len(layers) == 2:
        new = layers[0]
        offs = new.get_offsets()
        box = ((offs[1], offs[2]) if len(offs) == 3 else tuple(offs)) + (new.get_width(), new.get_height())
        check("recolor: one new layer over the selection, named after the palette", tuple(box) == (4, 2, 30, 24)
              and new.get_name().startswith("Sfumato Recolor (palette #b01010,#f0e0a0, seed 1)"),
              (box, new.get_name()))
        px = read(new, 4, 2, 30, 24)
        dist = sorted(min(sum(abs(px[i + c] - p[c]) for c in range(3)) for p in palette) for i in range(0, len(px), 4))
        src_px = read(src, 4, 2, 30, 24)
        before = sorted(min(sum(abs(src_px[i + c] - p[c]) for c in range(3)) for p in palette)
                        for i in range(0, len(src_px), 4))
        REPORT.setdefault("recolor", {})["median_distance_to_palette"] = [dist[len(dist) // 2], before[len(before) // 2]]
        check("recolor: the colours moved near the palette", dist[len(dist) // 2] < 40 < before[len(before) // 2],
              REPORT["recolor"])
    else:
        check("recolor: one new layer", False, layer_names(img))
    # the palette taken from a reference layer (k colours)
    ref = Gimp.Layer.new(img, "reference", 16, 16, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(ref, None, len(img.get_layers()))
    ref.get_buffer().set(Gegl.Rectangle.new(0, 0, 16, 16), "R'G'B'A u8",
                         b"".join(bytes((20, 40, 200, 255) if i < 128 else (250, 250, 40, 255)) for i in range(256)))
    ref.get_buffer().flush()
    before = len(img.get_layers())
    status, error, _ = call("sfumato-recolor", img, [src], reference_layer=ref, colors=2, seed=2)
    check("recolor from a reference layer: one more layer", status == "success" and len(img.get_layers()) == before + 1,
          error or layer_names(img))
    img.delete()


def zoo_upscale():
    """Restore, task upscale x4, with a zoo model (Real-ESRGAN x4plus) on a small layer: a new image
    4x its size. harness.py judges the exported pair against a bicubic upscale (zoo_compare.py)."""
    model = CFG.get("zoo_model")
    if not model:
        return
    x, y, side = 70, 78, CFG.get("zoo_size", 24)  # the left rim of the red disc over the gradient
    small = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(CFG["image"]))
    small.crop(side, side, x, y)
    layer = small.get_layers()[0]
    export_flat(small, os.path.join(OUT, "zoo-small.png"))
    old_ids = {i.get_id() for i in Gimp.get_images()}
    status, error, _ = call("sfumato-restore", small, [layer], task="upscale", scale=4, model=model)
    check(f"zoo upscale x4 with {model}: succeeds", status == "success", error)
    added = [i for i in Gimp.get_images() if i.get_id() not in old_ids]
    sizes = [(i.get_width(), i.get_height()) for i in added]
    check(f"zoo upscale x4 with {model}: one new image 4x the layer's size", sizes == [(4 * side, 4 * side)], sizes)
    if len(added) == 1:
        REPORT["zoo"] = {"model": model, "layers": layer_names(added[0])}
        export_flat(added[0], os.path.join(OUT, "zoo-big.png"))
    for extra in added:
        extra.delete()
    small.delete()


def export_flat(image, path):
    dup = image.duplicate()
    dup.flatten()
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, dup, Gio.File.new_for_path(path), None)
    dup.delete()


def main():
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(CFG["image"]))
    base = image.get_layers()[0]
    # work on an offset copy so that layer offsets are exercised
    layer = Gimp.Layer.new_from_drawable(base, image)
    layer.set_name("offset source")
    image.insert_layer(layer, None, 0)
    layer.add_alpha()
    layer.set_offsets(16, 8)
    sel = (96, 64, 64, 48)
    if CFG.get("only_cancel"):
        return cancel_check(image)
    if CFG.get("only_patterns"):
        return pattern_checks()

    status, error, values = call("sfumato-engine-status", None, None, engine_address=CFG["address"],
                                 engine_python="", transport="auto", remember=True)
    check("engine status succeeds over zmq", status == "success", error)
    text = values.index(1) if status == "success" else ""
    check("engine status names address and device", CFG["address"] in text and "Device" in text, text)

    export_flat(image, os.path.join(OUT, "before.png"))
    new = run_pixel_op("inpaint", "sfumato-inpaint", image, layer, sel, "inpaint", steps=4, seed=3)
    if new is not None:
        export_flat(image, os.path.join(OUT, "inpaint.png"))
        REPORT["inpaint_selection"] = list(sel)
        image.remove_layer(new)
    new = run_pixel_op("remove object", "sfumato-remove-object", image, layer, sel, "inpaint", grow=8)
    if new is not None:
        image.remove_layer(new)
    if "inpaint" in CFG["ops"]:
        remove_with_source(image, layer, sel)
        for sides, amount, unit, expect in (("right", 25, "percent", (0, 0, 400, 240)),
                                            ("all", 16, "px", (16, 16, 352, 272))):
            extend_check(sides, amount, unit, expect)
    new = run_pixel_op("restore", "sfumato-restore", image, layer, sel, "restore", task="denoise", sigma=25.0,
                       steps=3, seed=1)
    if new is not None:
        image.remove_layer(new)
    new = run_pixel_op("stylize", "sfumato-stylize", image, layer, sel, "stylize",
                       style_file=Gio.File.new_for_path(CFG["style"]), steps=3, seed=1)
    if new is not None:
        image.remove_layer(new)

    # whole layer (no selection), upscale into a new image
    Gimp.Selection.none(image)
    old_ids = {i.get_id() for i in Gimp.get_images()}
    status, error, _ = call("sfumato-restore", image, [layer], task="upscale", scale=2, steps=2)
    if "restore" in CFG["ops"]:
        check("upscale: succeeds", status == "success", error)
        added = [i for i in Gimp.get_images() if i.get_id() not in old_ids]
        check("upscale: creates one new image twice the layer's size", len(added) == 1
              and (added[0].get_width(), added[0].get_height()) == (2 * layer.get_width(), 2 * layer.get_height()),
              [(i.get_width(), i.get_height()) for i in added])
        for extra in added:
            extra.delete()

    zoo_upscale()

    # generate a tileable pattern as a new layer the size of the selection
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 64, 64)
    before = len(image.get_layers())
    status, error, _ = call("sfumato-generate-pattern", image, [layer], steps=3, seed=5)
    if "generate" in CFG["ops"]:
        check("generate: succeeds", status == "success", error)
        layers = image.get_layers()
        check("generate: one 64x64 layer added", len(layers) == before + 1
              and (layers[0].get_width(), layers[0].get_height()) == (64, 64), layer_names(image))
        if len(layers) == before + 1:
            image.remove_layer(layers[0])
    else:
        check("generate: readable unknown-op error", status != "success" and "does not offer" in error, error)

    pattern_checks()

    # 16-bit and float images keep their precision and stay bit-exact outside the selection
    for prec, fmt, bpp in ((Gimp.Precision.U16_NON_LINEAR, "R'G'B'A u16", 8),
                           (Gimp.Precision.FLOAT_NON_LINEAR, "R'G'B'A float", 16)):
        deep = image.duplicate()
        deep.convert_precision(prec)
        src = deep.get_layers()[0]
        deep.select_rectangle(Gimp.ChannelOps.REPLACE, *sel)
        deep_before = flat(deep, fmt)
        status, error, _ = call("sfumato-inpaint", deep, [src], steps=3, seed=2)
        tag = prec.value_nick
        if "inpaint" in CFG["ops"]:
            check(f"{tag}: inpaint succeeds", status == "success", error)
            if status == "success":
                new = deep.get_layers()[0]
                offs = new.get_offsets()
                nx, ny = (offs[1], offs[2]) if len(offs) == 3 else offs
                nw, nh = new.get_width(), new.get_height()
                same, mad, changed = compare(read(src, nx, ny, nw, nh, fmt), read(new, nx, ny, nw, nh, fmt),
                                             selection_mask(deep, nx, ny, nw, nh), bpp)
                check(f"{tag}: image precision kept", deep.get_precision() == prec, deep.get_precision())
                check(f"{tag}: transparent outside the selection, changed inside", same and changed > CHANGED_MIN,
                      f"changed {changed:.2f}")
                check(f"{tag}: the image outside the selection unchanged (bit for bit)",
                      composite_unchanged_outside(deep, deep_before, flat(deep, fmt), bpp))
        deep.delete()

    # errors reach the caller as sentences: a dead engine address
    status, error, _ = call("sfumato-engine-status", None, None, engine_address="tcp://127.0.0.1:9",
                            engine_python="", transport="zmq", autostart=False, remember=False)
    check("dead engine: readable error that says how to start it", status != "success"
          and "sfumato serve" in error and "Traceback" not in error, error)

    # the relay path: the plug-in talks through `python -m engine.relay` (settings stored in a parasite)
    status, error, values = call("sfumato-engine-status", None, None, engine_address=CFG["address"],
                                 engine_python=CFG["relay_python"], transport="relay", remember=True)
    check("relay: engine status succeeds", status == "success" and "via relay" in values.index(1),
          error or values.index(1))
    if "inpaint" in CFG["ops"]:
        new = run_pixel_op("inpaint via relay", "sfumato-inpaint", image, layer, sel, "inpaint", steps=3, seed=4)
        if new is not None:
            image.remove_layer(new)
    call("sfumato-engine-status", None, None, engine_address=CFG["address"], engine_python="",
         transport="auto", remember=True)

    cancel_check(image)


def autostart_checks():
    """No engine is running at CFG["address"]: the first call starts one with the installer's
    Python and uses it; a second call finds it running (harness.py checks it stops with GIMP)."""
    t0 = time.time()
    status, error, values = call("sfumato-engine-status", None, None, engine_address=CFG["address"],
                                 engine_python="", transport="auto", remember=False)
    REPORT["autostart_seconds"] = round(time.time() - t0, 2)
    check("auto-start: Engine Status starts the engine and reaches it", status == "success"
          and CFG["address"] in values.index(1), error or values.index(1))
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(CFG["image"]))
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 96, 64, 64, 48)
    before = len(image.get_layers())
    status, error, _ = call("sfumato-inpaint", image, [image.get_layers()[0]], steps=2, seed=1)
    check("auto-start: inpaint runs on the started engine", status == "success"
          and len(image.get_layers()) == before + 1, error)
    image.delete()


def cancel_check(image):
    """GIMP kills a plug-in whose progress is cancelled; harness.py does the killing."""
    long_op = CFG.get("long_op")
    if long_op:
        big = image.duplicate()
        src = big.get_layers()[0]
        big.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, big.get_width() - 16, big.get_height() - 16)
        marker("cancel-start")
        t0 = time.time()
        n_layers = len(big.get_layers())
        status, error, _ = call(long_op["proc"], big, [src], **long_op["args"])
        REPORT["cancel"] = {"status": status, "error": error, "seconds": round(time.time() - t0, 2),
                            "layers": len(big.get_layers())}
        check("cancel: the killed plug-in left no new layer", len(big.get_layers()) == n_layers, layer_names(big))
        big.delete()


try:
    autostart_checks() if CFG.get("autostart_only") else main()
    save_report()
except Exception as exc:  # the report says what broke; the harness fails on it
    import traceback

    REPORT["crash"] = traceback.format_exc()
    check("batch script ran to the end", False, f"{type(exc).__name__}: {exc}")
    save_report()
