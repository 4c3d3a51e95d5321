"""Build the synthetic Chibi urban-core demo data (streets, communities, grids, compounds...).

Everything written here is synthetic except the street names and the city boundary it is clipped
to. Seeded and deterministic: two runs give byte-identical files.
Run: .venv/bin/python data/build_demo.py [OUTPUT_DIR]   (default data/chibi/)
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from derive_boundary import DECIMALS, rounded  # one rounding for every data file
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box, mapping, shape

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "data" / "chibi"
BOUNDARY = OUTPUT / "boundary.geojson"  # always read from the repo, whatever the output dir

SEED = 421281
GRID_SIZE = 10.0**-DECIMALS  # degrees; snap-rounding precision of every written vertex
CENTRE = (113.90, 29.72)  # WGS-84 lon, lat of the urban centre
CORE_W, CORE_H = 8000.0, 6000.0  # metres
ROW_HEIGHT_DEG = 0.004  # latitude band (~440 m) used to order serials north→south, then west→east
COMMUNITY_ROW_HEIGHT_DEG = 0.012
N_GRIDS = 263
N_COMPOUNDS = 383
METRIC_CRS = "EPSG:32649"  # UTM 49N: metres for construction and area checks
LEVELS = ("street", "community", "grid", "compound")

TO_UTM = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)

STREETS = [  # code, name, name_en, seed offset from centre (m), communities (name, pinyin)
    (
        "421281001",
        "蒲圻街道",
        "Puqi Subdistrict",
        (-1800.0, 1300.0),
        [
            ("金鸡山", "Jinjishan"),
            ("河北", "Hebei"),
            ("沿河", "Yanhe"),
            ("西湖", "Xihu"),
            ("东风", "Dongfeng"),
            ("凤凰", "Fenghuang"),
            ("育英", "Yuying"),
            ("荷花", "Hehua"),
            ("城西", "Chengxi"),
            ("新风", "Xinfeng"),
        ],
    ),
    (
        "421281002",
        "赤马港街道",
        "Chimagang Subdistrict",
        (2400.0, 200.0),
        [
            ("车站", "Chezhan"),
            ("宝塔", "Baota"),
            ("金柳", "Jinliu"),
            ("丽景", "Lijing"),
            ("桂花", "Guihua"),
            ("月亮湾", "Yueliangwan"),
            ("中伙", "Zhonghuo"),
            ("茶庵", "Cha'an"),
            ("蒲纺", "Pufang"),
        ],
    ),
    (
        "421281003",
        "陆水湖街道",
        "Lushuihu Subdistrict",
        (-1900.0, -1900.0),
        [
            ("陆水", "Lushui"),
            ("青山", "Qingshan"),
            ("莲花塘", "Lianhuatang"),
            ("雪峰", "Xuefeng"),
            ("黄龙", "Huanglong"),
            ("马鞍山", "Ma'anshan"),
            ("龙佑", "Longyou"),
            ("砂子岭", "Shaziling"),
        ],
    ),
]

PREFIXES = [  # compound and property-company name stems (synthetic)
    ("锦绣", "Jinxiu"),
    ("阳光", "Yangguang"),
    ("翠竹", "Cuizhu"),
    ("金色", "Jinse"),
    ("幸福", "Xingfu"),
    ("和平", "Heping"),
    ("东方", "Dongfang"),
    ("南山", "Nanshan"),
    ("碧水", "Bishui"),
    ("书香", "Shuxiang"),
    ("桃源", "Taoyuan"),
    ("银杏", "Yinxing"),
    ("丽水", "Lishui"),
    ("春晖", "Chunhui"),
    ("新城", "Xincheng"),
    ("滨湖", "Binhu"),
    ("江南", "Jiangnan"),
    ("盛世", "Shengshi"),
    ("华府", "Huafu"),
    ("御景", "Yujing"),
    ("天誉", "Tianyu"),
    ("康乐", "Kangle"),
    ("怡景", "Yijing"),
    ("绿洲", "Lvzhou"),
    ("紫荆", "Zijing"),
    ("梧桐", "Wutong"),
    ("香樟", "Xiangzhang"),
    ("玉兰", "Yulan"),
    ("福星", "Fuxing"),
    ("明珠", "Mingzhu"),
    ("长安", "Chang'an"),
    ("永安", "Yong'an"),
    ("泰和", "Taihe"),
    ("安居", "Anju"),
    ("铁路", "Tielu"),
    ("电力", "Dianli"),
    ("粮食", "Liangshi"),
    ("纺织", "Fangzhi"),
    ("教师", "Jiaoshi"),
    ("供销", "Gongxiao"),
    ("邮电", "Youdian"),
    ("向阳", "Xiangyang"),
    ("朝阳", "Chaoyang"),
    ("红星", "Hongxing"),
    ("兴华", "Xinghua"),
    ("嘉禾", "Jiahe"),
    ("瑞丰", "Ruifeng"),
    ("鑫源", "Xinyuan"),
    ("龙泉", "Longquan"),
    ("凤栖", "Fengqi"),
    ("观澜", "Guanlan"),
    ("望湖", "Wanghu"),
    ("临江", "Linjiang"),
    ("山水", "Shanshui"),
    ("竹林", "Zhulin"),
    ("枫林", "Fenglin"),
    ("金桂", "Jingui"),
    ("星河", "Xinghe"),
    ("白云", "Baiyun"),
    ("青松", "Qingsong"),
]
COMPOUND_SUFFIXES = [
    ("花园", "Garden"),
    ("小区", "Estate"),
    ("苑", "Court"),
    ("家园", "Homes"),
    ("公寓", "Apartments"),
    ("新村", "New Village"),
    ("雅居", "Residence"),
]

BUREAUS = [
    ("WATER", "水利和湖泊局", "Water Resources and Lakes Bureau"),
    ("CGJ", "城市管理执法局", "Urban Management and Law Enforcement Bureau"),
    ("ZJJ", "住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
    ("JTJ", "交通运输局", "Transport Bureau"),
    ("ZRJ", "自然资源和规划局", "Natural Resources and Planning Bureau"),
    ("HBJ", "生态环境局", "Ecology and Environment Bureau"),
    ("JJDD", "公安局交警大队", "Public Security Bureau Traffic Police Brigade"),
    ("SJJ", "市场监督管理局", "Market Supervision Administration"),
    ("YLJ", "园林局", "Landscaping and Greening Bureau"),
    ("MZJ", "民政局", "Civil Affairs Bureau"),
    ("YJJ", "应急管理局", "Emergency Management Bureau"),
    ("WJJ", "卫生健康局", "Health Bureau"),
    ("JYJ", "教育局", "Education Bureau"),
    ("WLJ", "文化和旅游局", "Culture and Tourism Bureau"),
    ("RSJ", "人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    ("XFDD", "消防救援大队", "Fire and Rescue Brigade"),
]
UTILITIES = [
    ("GDGS", "供电公司", "Power Supply Company"),
    ("ZLS", "自来水公司", "Water Supply Company"),
    ("RQGS", "燃气公司", "Gas Company"),
    ("DX", "电信赤壁分公司", "China Telecom Chibi Branch"),
    ("YD", "移动赤壁分公司", "China Mobile Chibi Branch"),
    ("LT", "联通赤壁分公司", "China Unicom Chibi Branch"),
]
N_PROPERTY_COMPANIES = 60

# code, name, name_en, department, time limit, unit, duplicate radius m, duplicate window h
CATEGORIES: list[tuple[str, str, str, str, int, str, str, str]] = [
    ("C0101", "上水井盖", "Water-supply manhole cover", "ZLS", 2, "urgent_hours", "", ""),
    ("C0102", "雨水井盖", "Storm-drain manhole cover", "ZJJ", 2, "urgent_hours", "", ""),
    ("C0103", "污水井盖", "Sewer manhole cover", "ZJJ", 2, "urgent_hours", "", ""),
    ("C0104", "雨水箅子", "Storm-drain grate", "ZJJ", 4, "urgent_hours", "", ""),
    ("C0105", "电力井盖", "Power manhole cover", "GDGS", 2, "urgent_hours", "", ""),
    ("C0106", "通信井盖", "Telecom manhole cover", "DX", 2, "urgent_hours", "", ""),
    ("C0107", "燃气井盖", "Gas manhole cover", "RQGS", 2, "urgent_hours", "", ""),
    ("C0108", "无主井盖", "Manhole cover of unknown owner", "CGJ", 2, "urgent_hours", "", ""),
    ("C0109", "消防栓", "Fire hydrant", "XFDD", 1, "working_days", "", ""),
    ("C0110", "路灯", "Street lamp", "CGJ", 3, "working_days", "20", "168"),
    ("C0111", "变压器箱", "Transformer box", "GDGS", 2, "working_days", "", ""),
    ("C0112", "通信交接箱", "Telecom cabinet", "DX", 3, "working_days", "", ""),
    ("C0201", "交通信号灯", "Traffic signal", "JJDD", 4, "urgent_hours", "", ""),
    ("C0202", "交通标志牌", "Traffic sign", "JJDD", 3, "working_days", "", ""),
    ("C0203", "道路护栏", "Road guardrail", "JTJ", 3, "working_days", "", ""),
    ("C0204", "公交站亭", "Bus shelter", "JTJ", 5, "working_days", "", ""),
    ("C0205", "人行道板", "Pavement slabs", "JTJ", 5, "working_days", "", ""),
    ("C0301", "公共厕所", "Public toilet", "CGJ", 1, "working_days", "", ""),
    ("C0302", "垃圾箱", "Litter bin", "CGJ", 1, "working_days", "", ""),
    ("C0303", "垃圾收集站", "Refuse collection point", "CGJ", 2, "working_days", "", ""),
    ("C0401", "古树名木", "Heritage tree", "YLJ", 2, "working_days", "", ""),
    ("C0402", "行道树", "Street tree", "YLJ", 3, "working_days", "", ""),
    ("C0403", "绿地", "Green space", "YLJ", 5, "working_days", "", ""),
    ("C0404", "花坛", "Flower bed", "YLJ", 5, "working_days", "", ""),
    ("C0405", "城市雕塑", "Public sculpture", "YLJ", 10, "working_days", "", ""),
    ("C0501", "危房", "Dangerous building", "ZJJ", 1, "working_days", "", ""),
    ("C0502", "地下通道", "Underpass", "JTJ", 5, "working_days", "", ""),
    ("C0601", "防汛设施", "Flood-control facility", "WATER", 1, "working_days", "", ""),
    ("C0602", "河湖护栏", "Waterside railing", "WATER", 3, "working_days", "", ""),
    ("C0603", "监控电子眼", "CCTV camera", "JJDD", 5, "working_days", "", ""),
    ("E0101", "违法建设", "Illegal building", "CGJ", 5, "working_days", "", ""),
    ("E0102", "暴露垃圾", "Exposed garbage", "CGJ", 4, "working_hours", "50", "24"),
    ("E0103", "积存垃圾渣土", "Accumulated garbage and spoil", "CGJ", 1, "working_days", "", ""),
    ("E0104", "道路不洁", "Dirty road", "CGJ", 4, "working_hours", "", ""),
    ("E0105", "乱堆物堆料", "Illegal stacking of materials", "CGJ", 1, "working_days", "", ""),
    ("E0106", "水域不洁", "Dirty water surface", "WATER", 1, "working_days", "", ""),
    ("E0107", "绿地脏乱", "Littered green space", "YLJ", 1, "working_days", "", ""),
    ("E0108", "露天焚烧", "Open burning", "HBJ", 2, "working_hours", "", ""),
    ("E0109", "油烟污染", "Cooking-fume pollution", "HBJ", 5, "working_days", "", ""),
    ("E0110", "噪声扰民", "Noise nuisance", "HBJ", 2, "working_days", "", ""),
    ("E0201", "非法小广告", "Illegal flyers", "CGJ", 1, "working_days", "", ""),
    ("E0202", "违规户外广告", "Illegal outdoor advertising", "CGJ", 5, "working_days", "", ""),
    ("E0203", "占道广告牌", "Sandwich board on the pavement", "CGJ", 4, "working_hours", "", ""),
    ("E0301", "施工扰民", "Construction nuisance", "ZJJ", 2, "working_days", "", ""),
    ("E0302", "工地扬尘", "Construction dust", "ZJJ", 1, "working_days", "", ""),
    ("E0303", "道路遗撒", "Spillage on the road", "CGJ", 4, "working_hours", "", ""),
    ("E0304", "无证掘路", "Unpermitted road digging", "JTJ", 1, "working_days", "", ""),
    ("E0401", "路面塌陷", "Road collapse", "JTJ", 2, "urgent_hours", "", ""),
    ("E0402", "自来水管破裂", "Burst water main", "ZLS", 2, "urgent_hours", "", ""),
    ("E0403", "燃气泄漏", "Gas leak", "RQGS", 1, "urgent_hours", "", ""),
    ("E0404", "道路积水", "Road flooding", "ZJJ", 4, "urgent_hours", "", ""),
    ("E0405", "树木倒伏", "Fallen tree", "YLJ", 4, "urgent_hours", "", ""),
    ("E0501", "占道经营", "Street vending on the roadway", "CGJ", 4, "working_hours", "30", "4"),
    ("E0502", "店外经营", "Trading outside the shopfront", "CGJ", 1, "working_days", "", ""),
    ("E0503", "无照经营游商", "Unlicensed hawker", "SJJ", 1, "working_days", "", ""),
    ("E0504", "非法停车", "Illegal parking", "JJDD", 2, "working_hours", "30", "2"),
    ("E0601", "动物尸体", "Dead animal", "CGJ", 4, "working_hours", "", ""),
    ("E0602", "河湖违法养殖", "Illegal fish farming in lakes", "WATER", 5, "working_days", "", ""),
    ("E0603", "占用消防通道", "Blocked fire lane", "XFDD", 1, "working_days", "", ""),
    ("E0604", "渣土车违规运输", "Uncovered muck truck", "CGJ", 4, "working_hours", "", ""),
]
WATER_EVENTS = ["E0102", "E0103", "E0105", "E0106", "E0108", "E0602"]


@dataclass
class Area:
    """One polygon of the hierarchy while it is being built (geometry in WGS-84 degrees)."""

    level: str
    geom: shapely.Geometry
    code: str = ""
    name: str = ""
    name_en: str = ""
    parent_code: str = ""
    children: list[Area] = field(default_factory=list)


# --- geometry helpers -----------------------------------------------------------------------


# Construction happens in a local equirectangular plane in metres around CENTRE. It is affine in
# lon/lat, so straight edges and T-junctions stay straight and exact in degrees (a UTM → degrees
# reprojection bends long edges by millimetres and opens slivers of a square metre between
# neighbours). Its scale error over the 8 km core is well under 1 %; areas are checked in UTM.
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(CENTRE[1])))


def to_wgs(geom: shapely.Geometry) -> shapely.Geometry:
    """Local plane metres → WGS-84 lon/lat degrees (affine)."""
    return affinity.affine_transform(
        geom, [1 / _M_PER_DEG_LON, 0, 0, 1 / _M_PER_DEG_LAT, CENTRE[0], CENTRE[1]]
    )


def to_local(geom: shapely.Geometry) -> shapely.Geometry:
    """WGS-84 lon/lat degrees → local plane metres around CENTRE (affine)."""
    return affinity.affine_transform(
        geom,
        [
            _M_PER_DEG_LON,
            0,
            0,
            _M_PER_DEG_LAT,
            -CENTRE[0] * _M_PER_DEG_LON,
            -CENTRE[1] * _M_PER_DEG_LAT,
        ],
    )


def to_utm(geom: shapely.Geometry) -> shapely.Geometry:
    """WGS-84 lon/lat degrees → UTM 49N metres (for area checks)."""
    return shapely.transform(geom, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))


def sample_points(rng: np.random.Generator, poly: Polygon, n: int, min_dist: float) -> np.ndarray:
    """n seeded points inside `poly` (metres), at least `min_dist` apart where possible."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    pts: list[tuple[float, float]] = []
    d = min_dist
    while len(pts) < n:
        for _ in range(400 * n):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if not poly.contains(Point(x, y)):
                continue
            if all((x - px) ** 2 + (y - py) ** 2 >= d * d for px, py in pts):
                pts.append((x, y))
                if len(pts) == n:
                    break
        d *= 0.8  # relax the spacing if the polygon is crowded
    return np.array(pts)


def voronoi_cells(container: Polygon, seeds: np.ndarray, lloyd: int = 0) -> list[Polygon]:
    """Voronoi cells of `seeds` clipped to `container`, in seed order, after `lloyd` relaxations."""
    for step in range(lloyd + 1):
        cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=container, ordered=True)
        clipped = [c.intersection(container) for c in shapely.get_parts(cells)]
        if step < lloyd:
            seeds = np.array([[c.centroid.x, c.centroid.y] for c in clipped])
    return clipped


def row_order_key(geom: shapely.Geometry, top: float, row_height: float) -> tuple[int, float]:
    """Serial order: latitude rows counted down from `top`, then west→east by centroid lon."""
    c = geom.centroid
    return int((top - c.y) // row_height), c.x


def split_counts(rng: np.random.Generator, total: int, n: int, lo: int, hi: int) -> list[int]:
    """n seeded integers in [lo, hi] that sum to `total`."""
    counts = rng.integers(lo, hi + 1, n)
    while counts.sum() != total:
        i = rng.integers(n)
        if counts.sum() < total and counts[i] < hi:
            counts[i] += 1
        elif counts.sum() > total and counts[i] > lo:
            counts[i] -= 1
    return [int(c) for c in counts]


# --- the hierarchy --------------------------------------------------------------------------


def load_boundary() -> shapely.Geometry:
    """The derived city boundary (WGS-84)."""
    fc = json.loads(BOUNDARY.read_text(encoding="utf-8"))
    return shape(fc["features"][0]["geometry"])


def core_polygon(boundary: shapely.Geometry) -> Polygon:
    """The 8×6 km urban core around CENTRE (local metres), clipped to the city boundary."""
    cx, cy = 0.0, 0.0  # the local plane is centred on CENTRE
    core = box(cx - CORE_W / 2, cy - CORE_H / 2, cx + CORE_W / 2, cy + CORE_H / 2)
    b = to_local(boundary)
    if not b.contains(Point(cx, cy)):
        raise ValueError("the urban centre is outside the city boundary")
    clipped = core.intersection(b)
    if clipped.geom_type != "Polygon":
        raise ValueError("the core must stay one polygon after clipping")
    return clipped


def build_tree(rng: np.random.Generator, core: Polygon) -> list[Area]:
    """Streets → communities → grids as nested Voronoi tilings (local metres, not yet noded)."""
    cx, cy = core.centroid.x, core.centroid.y
    street_seeds = np.array([[cx + dx, cy + dy] for _, _, _, (dx, dy), _ in STREETS])
    street_cells = voronoi_cells(core, street_seeds)
    n_comm = sum(len(s[4]) for s in STREETS)
    grid_counts = sorted(split_counts(rng, N_GRIDS, n_comm, 7, 13))
    streets: list[Area] = []
    communities: list[Area] = []
    for (code, name, name_en, _, _), cell in zip(STREETS, street_cells, strict=True):
        street = Area("street", cell, code, name, name_en, "421281")
        streets.append(street)
        n = len(STREETS[len(streets) - 1][4])
        seeds = sample_points(rng, cell.buffer(-150), n, min_dist=900)
        for cc in voronoi_cells(cell, seeds, lloyd=2):
            comm = Area("community", cc)
            street.children.append(comm)
            communities.append(comm)
    # Larger communities get more grids; counts are uneven, 7..13.
    by_area = sorted(communities, key=lambda c: c.geom.area)
    for comm, n_grids in zip(by_area, grid_counts, strict=True):
        seeds = sample_points(rng, comm.geom.buffer(-60), n_grids, min_dist=250)
        comm.children = [Area("grid", g) for g in voronoi_cells(comm.geom, seeds, lloyd=3)]
    return streets


def node_and_snap(streets: list[Area]) -> None:
    """Rebuild every grid from one noded, snap-rounded linework so shared edges are identical.

    Grids are reprojected to degrees, their boundaries noded together on a 1e-7° precision grid
    (GEOS OverlayNG snap-rounding) and polygonised; each face goes back to the grid it came from.
    Communities and streets are then unions of their grids, so all levels tile exactly.
    """
    grids = [g for s in streets for c in s.children for g in c.children]
    originals = [to_wgs(g.geom) for g in grids]
    linework = shapely.union_all(shapely.boundary(originals), grid_size=GRID_SIZE)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    tree = shapely.STRtree(originals)
    buckets: list[list[shapely.Geometry]] = [[] for _ in grids]
    for face in faces:
        candidates = tree.query(face)
        overlaps = [shapely.area(shapely.intersection(face, originals[i])) for i in candidates]
        buckets[int(candidates[int(np.argmax(overlaps))])].append(face)
    for g, parts in zip(grids, buckets, strict=True):
        g.geom = shapely.union_all(parts, grid_size=GRID_SIZE)
        if g.geom.geom_type != "Polygon":
            raise ValueError("a grid fell apart while snapping")
    for s in streets:
        for c in s.children:
            c.geom = shapely.union_all([g.geom for g in c.children], grid_size=GRID_SIZE)
        s.geom = shapely.union_all([c.geom for c in s.children], grid_size=GRID_SIZE)


def assign_codes(streets: list[Area]) -> None:
    """Give communities and grids their codes and names in serial order (N→S rows, W→E)."""
    for (_, _, _, _, names), s in zip(STREETS, streets, strict=True):
        top = s.geom.bounds[3]
        s.children.sort(key=lambda c: row_order_key(c.geom, top, COMMUNITY_ROW_HEIGHT_DEG))
        for i, (c, (cn, cn_en)) in enumerate(zip(s.children, names, strict=True), start=1):
            c.code, c.parent_code = f"{s.code}{i:03d}", s.code
            c.name, c.name_en = f"{cn}社区", f"{cn_en} Community"
            ctop = c.geom.bounds[3]
            c.children.sort(key=lambda g: row_order_key(g.geom, ctop, ROW_HEIGHT_DEG))
            for j, g in enumerate(c.children, start=1):
                g.code, g.parent_code = f"{c.code}{j:03d}", c.code
                g.name = f"{s.name}{c.name}第{j}网格"
                g.name_en = f"{s.name_en.split()[0]} {c.name_en} Grid {j}"


def check_tiling(streets: list[Area]) -> None:
    """Fail loudly unless every level tiles its parent: gaps and overlaps < 1 m² per parent."""
    for parent, kids in [(None, streets)] + [
        (p, p.children) for s in streets for p in [s, *s.children] if p.level != "grid"
    ]:
        if parent is None:
            continue
        geoms = [k.geom for k in kids]
        if not shapely.coverage_is_valid(shapely.GeometryCollection(geoms)):
            raise ValueError(f"{parent.code}: children are not a valid coverage")
        p_area = to_utm(parent.geom).area
        union_area = to_utm(shapely.union_all(geoms)).area
        sum_area = sum(to_utm(g).area for g in geoms)
        if abs(p_area - union_area) > 1.0 or sum_area - union_area > 1.0:
            raise ValueError(f"{parent.code}: gap or overlap above 1 m²")


# --- compounds and layers -------------------------------------------------------------------


def build_layers(core: Polygon) -> list[dict]:
    """Responsibility layers (local metres): North Canal, a lake, a main road, a park."""
    minx, miny, maxx, maxy = core.bounds
    cx, cy = core.centroid.x, core.centroid.y
    xs = np.linspace(minx - 200, maxx + 200, 21)
    canal = LineString(np.column_stack([xs, cy + 700 + 180 * np.sin((xs - minx) / 900.0)]))
    canal = canal.intersection(core)
    lake = affinity.rotate(
        affinity.scale(Point(cx + 1500, cy - 1600).buffer(1.0, quad_segs=16), 650, 380), 20
    )
    road = LineString([(cx - 400, miny - 100), (cx - 250, cy), (cx - 500, maxy + 100)])
    road = road.intersection(core)
    park = affinity.rotate(box(cx - 2900, cy + 1500, cx - 2250, cy + 1950), 12)
    water_cats = ";".join(WATER_EVENTS)
    road_cats = ";".join(c[0] for c in CATEGORIES if c[0].startswith("C02"))
    park_cats = ";".join(c[0] for c in CATEGORIES if c[0].startswith("C04"))
    return [
        _layer("PK001", "人民公园", "People's Park (synthetic)", "park", "YLJ", 5, 0, park_cats, park),
        _layer("RD001", "中心大道", "Central Avenue (synthetic)", "road", "JTJ", 5, 15, road_cats, road),
        _layer("RL001", "北渠", "North Canal (Beiqu)", "river_lake", "WATER", 10, 30, water_cats, canal),
        _layer(
            "RL002",
            "南湖",
            "South Lake (synthetic)",
            "river_lake",
            "WATER",
            10,
            0,
            water_cats,
            lake,
        ),
    ]


def _layer(
    code: str,
    name: str,
    name_en: str,
    kind: str,
    unit: str,
    priority: int,
    buffer_m: int,
    categories: str,
    geom_local: shapely.Geometry,
) -> dict:
    return {
        "code": code,
        "name": name,
        "name_en": name_en,
        "kind": kind,
        "unit_code": unit,
        "priority": priority,
        "buffer_m": buffer_m,
        "categories": categories,
        "geom_local": geom_local,
    }


def build_compounds(rng: np.random.Generator, communities: list[Area], layers: list[dict]) -> list[Area]:
    """~383 rotated-rectangle residential compounds (小区), each inside one community."""
    keep_out = shapely.union_all([lyr["geom_local"].buffer(max(lyr["buffer_m"], 20)) for lyr in layers])
    local = [to_local(c.geom) for c in communities]
    areas = np.array([u.area for u in local])
    quota = np.floor(N_COMPOUNDS * areas / areas.sum()).astype(int)
    for i in np.argsort(-(N_COMPOUNDS * areas / areas.sum() - quota))[: N_COMPOUNDS - quota.sum()]:
        quota[i] += 1
    names = [(p, pe, s, se) for p, pe in PREFIXES for s, se in COMPOUND_SUFFIXES]
    order = rng.permutation(len(names))
    out: list[Area] = []
    for comm, u, n in zip(communities, local, quota, strict=True):
        inner = u.buffer(-15)
        minx, miny, maxx, maxy = inner.bounds
        placed: list[Polygon] = []
        while len(placed) < n:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            w, h = rng.uniform(80, 300), rng.uniform(80, 220)
            rect = affinity.rotate(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), rng.uniform(-30, 30))
            if not inner.contains(rect) or rect.intersects(keep_out):
                continue
            if any(rect.distance(p) < 15 for p in placed):
                continue
            placed.append(rect)
        geoms = [shapely.set_precision(to_wgs(p), GRID_SIZE) for p in placed]
        top = comm.geom.bounds[3]
        geoms.sort(key=lambda g: row_order_key(g, top, ROW_HEIGHT_DEG))
        for k, g in enumerate(geoms, start=1):
            if not comm.geom.contains(g):
                raise ValueError("a compound left its community")
            p, pe, s, se = names[order[len(out)]]
            out.append(Area("compound", g, f"{comm.code}C{k:03d}", f"{p}{s}", f"{pe} {se}", comm.code))
    return out


# --- units and categories -------------------------------------------------------------------


def build_units(rng: np.random.Generator, streets: list[Area]) -> list[dict]:
    """Responsible units (包保单位) and the grids each is responsible for."""
    units: list[dict] = []
    for i, s in enumerate(streets, start=1):
        grids = [g.code for c in s.children for g in c.children]
        units.append(_unit(f"SO{i:03d}", f"{s.name}办事处", f"{s.name_en} Office", "street_office", grids))
    for s in streets:
        for c in s.children:
            units.append(
                _unit(
                    f"CC{c.code}",
                    f"{c.name}居民委员会",
                    f"{c.name_en} Committee",
                    "community_committee",
                    [g.code for g in c.children],
                )
            )
    others = [(code, n, ne, "bureau", (3, 8)) for code, n, ne in BUREAUS]
    others += [(code, n, ne, "utility", (2, 6)) for code, n, ne in UTILITIES]
    for i, (p, pe) in enumerate(PREFIXES[:N_PROPERTY_COMPANIES], start=1):
        others.append(
            (
                f"PC{i:03d}",
                f"{p}物业服务有限公司",
                f"{pe} Property Services Co.",
                "property_company",
                (1, 6),
            )
        )
    # Walk the grids in code order (spatially coherent) handing out consecutive runs, so every
    # grid gets at least one bureau or company; wrap around once the grids run out.
    all_grids = sorted(g.code for s in streets for c in s.children for g in c.children)
    cursor = 0
    handed: dict[str, dict] = {}
    for idx in rng.permutation(len(others)):
        code, name, name_en, kind, (lo, hi) = others[idx]
        n = int(rng.integers(lo, hi + 1))
        grids = [all_grids[(cursor + k) % len(all_grids)] for k in range(n)]
        cursor += n
        handed[code] = _unit(code, name, name_en, kind, grids)
    if cursor < len(all_grids):
        raise ValueError("not every grid has a non-locality unit")
    return units + [handed[o[0]] for o in others]  # listed order: bureaus, utilities, companies


def _unit(code: str, name: str, name_en: str, kind: str, grids: list[str]) -> dict:
    return {
        "code": code,
        "name": name,
        "name_en": name_en,
        "kind": kind,
        "grids": ";".join(sorted(set(grids))),
    }


# --- writing --------------------------------------------------------------------------------


def write_geojson(path: Path, features: list[dict]) -> None:
    """Write a FeatureCollection (EPSG:4326, lon/lat, RFC 7946 ring orientation), stable bytes."""
    fc = {"type": "FeatureCollection", "features": features}
    path.write_text(
        json.dumps(rounded(fc), ensure_ascii=False, separators=(",", ":")).replace(
            ',{"type":"Feature"', ',\n{"type":"Feature"'
        )
        + "\n",
        encoding="utf-8",
    )


def _feature(props: dict, geom: shapely.Geometry) -> dict:
    geom = shapely.orient_polygons(geom, exterior_cw=False)
    return {"type": "Feature", "properties": props, "geometry": mapping(geom)}


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """Write UTF-8 CSV with a header and \\n line ends."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def build(out_dir: Path) -> None:
    """Build every demo file into `out_dir`."""
    rng = np.random.default_rng(SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    core = core_polygon(load_boundary())
    streets = build_tree(rng, core)
    node_and_snap(streets)
    assign_codes(streets)
    check_tiling(streets)
    communities = [c for s in streets for c in s.children]
    layers = build_layers(core)
    compounds = build_compounds(rng, communities, layers)

    areas = [*streets, *communities, *(g for c in communities for g in c.children), *compounds]
    areas.sort(key=lambda a: (LEVELS.index(a.level), a.code))
    write_geojson(
        out_dir / "areas.geojson",
        [
            _feature(
                {
                    "level": a.level,
                    "code": a.code,
                    "name": a.name,
                    "name_en": a.name_en,
                    "parent_code": a.parent_code,
                },
                a.geom,
            )
            for a in areas
        ],
    )
    write_geojson(
        out_dir / "layers.geojson",
        [
            _feature(
                {k: v for k, v in lyr.items() if k != "geom_local"},
                shapely.set_precision(to_wgs(lyr["geom_local"]), GRID_SIZE),
            )
            for lyr in layers
        ],
    )
    units = build_units(rng, streets)
    write_csv(
        out_dir / "units.csv",
        ["code", "name", "name_en", "kind", "grids"],
        [[u["code"], u["name"], u["name_en"], u["kind"], u["grids"]] for u in units],
    )
    write_csv(
        out_dir / "categories.csv",
        [
            "code",
            "kind",
            "class_code",
            "subclass_code",
            "name",
            "name_en",
            "department",
            "time_limit",
            "time_limit_unit",
            "duplicate_radius_m",
            "duplicate_window_h",
        ],
        [
            [
                code,
                "component" if code[0] == "C" else "event",
                code[1:3],
                code[3:5],
                name,
                name_en,
                dept,
                limit,
                unit,
                radius,
                window,
            ]
            for code, name, name_en, dept, limit, unit, radius, window in CATEGORIES
        ],
    )
    print(
        f"wrote {len(areas)} areas ({len(compounds)} compounds), {len(units)} units, "
        f"{len(CATEGORIES)} categories, {len(layers)} layers to {out_dir}"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: build into the directory given, or data/chibi/."""
    args = sys.argv[1:] if argv is None else argv
    build(Path(args[0]) if args else OUTPUT)


if __name__ == "__main__":
    main()
