"""What the drafter knows before it reads anything: event-cue families, role words, countries.

Why fixed lists: the drafter has to tell "Shoigu talked with Kang Sun Nam" (a meeting) from
"Iran supplied Shahed drones" (a transfer) in four languages without a language model, and
to recognise a country it has never seen in ``actors.yaml``. The families are written in the
watchlist alias syntax, so what the drafter keeps goes into the draft unchanged.
"""

from __future__ import annotations

# Event-cue families: a family is kept in a draft when its phrases occur in the documents in
# a sentence that names two of the parties. Each becomes a `cues:` entry and one rule.
CUE_FAMILIES: dict[str, tuple[str, ...]] = {
    "visit": (
        "visit*", "delegation*", "arriv*", "trip", "{trip|journey|tour} to", "talks", "summit*", "envoy*",
        "{met|meets|meet} with", "met", "meets", "{host|hosts|hosted|hosting}", "{receive|received|receives}",
        "banquet*", "{held|hold|holds} {talks|discussions}", "{talked|talks} with",
        "방문", "방북", "방중", "방러", "대표단", "회담", "접견", "도착",
        "访问", "访华", "访朝", "代表团", "会谈", "会见", "抵达",
        "визит*", "делегаци*", "переговор*", "встреч*", "прибыл*",
    ),
    "agreement": (
        "treaty", "treaties", "pact", "pacts", "agreement*", "accord", "memorandum",
        "{sign|signs|signed|signing}", "ratif*",
        "조약", "협정", "조인", "비준", "条约", "协定", "协议", "签署", "批准",
        "договор", "договора", "договору", "договором", "договоре", "соглашени*", "подписа*", "ратифи*",
    ),
    "military": (
        "military", "defen{c|s}e", "troops", "soldiers", "army", "armed forces", "{exercise|exercises|drill|drills}",
        "{warship|warships|naval}", "security",
        "군사", "국방", "군대", "军事", "国防", "军队", "военн*", "оборон*", "войск*", "учени*",
    ),
    "arms": (
        "weapon*", "arms", "drone*", "missile*", "munition*", "ammunition", "shell*", "artillery", "rocket*",
        "{supply|supplies|supplied|supplying}", "{deliver|delivers|delivered|deliveries|delivery}",
        "{transfer|transfers|transferred|transferring}", "shipment*", "{ship|ships|shipped} to",
        "무기", "미사일", "포탄", "드론", "武器", "导弹", "炮弹", "无人机",
        "оруж*", "ракет*", "снаряд*", "боеприпас*", "беспилотник*", "дрон*", "постав*",
    ),
    "commemoration": (
        "anniversar*", "commemorat*", "celebrat*", "{mark|marks|marked|marking}", "jubilee",
        "주년", "돐", "기념", "경축", "周年", "纪念", "庆祝", "годовщин*", "летие", "летия", "юбиле*",
    ),
    "message": (
        "message*", "letter*", "congratulat*", "telegram*", "greeting*", "{phone|telephone} call*",
        "친서", "축전", "서한", "贺电", "贺信", "致电", "亲笔信", "поздрав*", "послани*", "телеграмм*",
    ),
    "economy": (
        "trade", "economic", "investment*", "{loan|loans|credit}", "sanction*", "oil", "gas", "energy",
        "무역", "경제", "제재", "贸易", "经济", "制裁", "торгов*", "экономическ*", "санкци*",
    ),
}

# Words before a name that make it a person ("Defense Minister Kang Sun Nam").
PERSON_TITLES = (
    "president", "vice president", "premier", "prime minister", "minister", "deputy minister", "vice minister",
    "foreign minister", "defense minister", "defence minister", "ambassador", "envoy", "general", "gen", "admiral",
    "adm", "colonel", "marshal", "chairman", "chairwoman", "chair", "leader", "secretary", "spokesman",
    "spokeswoman", "spokesperson", "governor", "mayor", "director", "commander", "chief", "mr", "mrs", "ms", "dr",
    "king", "queen", "prince", "sheikh", "ayatollah", "commissioner", "speaker", "senator", "deputy", "head",
)

# Words that make a capitalised name a body ("Islamic Revolutionary Guard Corps").
BODY_WORDS = (
    "ministry", "council", "committee", "party", "army", "navy", "corps", "guard", "guards", "agency", "assembly",
    "duma", "parliament", "majlis", "congress", "senate", "corporation", "company", "bureau", "commission",
    "office", "service", "forces", "force", "government", "organization", "organisation", "industries", "group",
    "institute", "bank", "union", "front", "kremlin", "department", "administration", "command", "court",
    "association", "federation", "fund", "academy", "university", "agency", "news",
)

# Countries the drafter recognises even when actors.yaml does not list them: id, name,
# then aliases (adjective, capital, other spellings and languages). The id becomes the
# side of a country new to the actor file.
COUNTRIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("iran", "Islamic Republic of Iran", ("Iran", "Iranian", "Iranians", "Iran{'|}s", "Tehran", "Islamic Republic",
                                          "이란", "伊朗", "Иран*", "Тегеран*")),
    ("belarus", "Belarus", ("Belarus", "Belarusian", "Minsk", "벨라루스", "白俄罗斯", "Белорус*", "Беларус*",
                            "Минск*")),
    ("syria", "Syria", ("Syria", "Syrian", "Damascus", "시리아", "叙利亚", "Сири{я|и|ю|ей}", "Дамаск*")),
    ("vietnam", "Vietnam", ("Vietnam", "Vietnamese", "Hanoi", "베트남", "越南", "Вьетнам*", "Ханой*")),
    ("pakistan", "Pakistan", ("Pakistan", "Pakistani", "Islamabad", "파키스탄", "巴基斯坦", "Пакистан*")),
    ("india", "India", ("India", "Indian", "New Delhi", "인도", "印度", "Инди{я|и|ю|ей}", "индийск*")),
    ("mongolia", "Mongolia", ("Mongolia", "Mongolian", "Ulaanbaatar", "몽골", "蒙古", "Монгол*")),
    ("cuba", "Cuba", ("Cuba", "Cuban", "Havana", "쿠바", "古巴", "Куб{а|ы|е|у|ой}", "кубинск*")),
    ("venezuela", "Venezuela", ("Venezuela", "Venezuelan", "Caracas", "베네수엘라", "委内瑞拉", "Венесуэл*")),
    ("kazakhstan", "Kazakhstan", ("Kazakhstan", "Kazakh", "Astana", "카자흐스탄", "哈萨克斯坦", "Казахстан*")),
    ("serbia", "Serbia", ("Serbia", "Serbian", "Belgrade", "세르비아", "塞尔维亚", "Серби{я|и|ю|ей}")),
    ("myanmar", "Myanmar", ("Myanmar", "Burma", "Burmese", "Naypyidaw", "미얀마", "缅甸", "Мьянм*")),
    ("ukraine", "Ukraine", ("Ukraine", "Ukrainian", "Ukrainians", "Kyiv", "Kiev", "우크라이나", "乌克兰", "Украин*",
                            "Киев*")),
    ("israel", "Israel", ("Israel", "Israeli", "Israelis", "Jerusalem", "이스라엘", "以色列", "Израил*")),
    ("turkey", "Turkey", ("Turkey", "Türkiye", "Turkish", "Ankara", "튀르키예", "土耳其", "Турци*")),
    ("saudi_arabia", "Saudi Arabia", ("Saudi Arabia", "Saudi", "Riyadh", "사우디", "沙特", "Саудовск*")),
    ("iraq", "Iraq", ("Iraq", "Iraqi", "Baghdad", "이라크", "伊拉克", "Ирак*")),
    ("afghanistan", "Afghanistan", ("Afghanistan", "Afghan", "Kabul", "아프가니스탄", "阿富汗", "Афганистан*")),
    ("japan", "Japan", ("Japan", "Japanese", "Tokyo", "일본", "日本", "Япони*", "японск*")),
    ("taiwan", "Taiwan", ("Taiwan", "Taiwanese", "Taipei", "대만", "台湾", "Тайван*")),
    ("germany", "Germany", ("Germany", "German", "Berlin", "독일", "德国", "Германи*")),
    ("france", "France", ("France", "French", "Paris", "프랑스", "法国", "Франци*")),
    ("united_kingdom", "United Kingdom", ("United Kingdom", "Britain", "British", "UK", "London", "영국", "英国",
                                          "Великобритани*")),
    ("european_union", "European Union", ("European Union", "EU", "Brussels", "유럽연합", "欧盟", "Евросоюз*")),
    ("nato", "NATO", ("NATO", "나토", "北约", "НАТО")),
    ("yemen", "Yemen", ("Yemen", "Yemeni", "Houthi*", "Sanaa", "예멘", "也门", "Йемен*", "хусит*")),
    ("lebanon", "Lebanon", ("Lebanon", "Lebanese", "Hezbollah", "Beirut", "레바논", "黎巴嫩", "Ливан*")),
    ("armenia", "Armenia", ("Armenia", "Armenian", "Yerevan", "아르메니아", "亚美尼亚", "Армени*")),
    ("azerbaijan", "Azerbaijan", ("Azerbaijan", "Azerbaijani", "Baku", "아제르바이잔", "阿塞拜疆", "Азербайджан*")),
    ("georgia", "Georgia", ("Georgia", "Georgian", "Tbilisi", "조지아", "格鲁吉亚", "Грузи*")),
    ("laos", "Laos", ("Laos", "Lao", "Vientiane", "라오스", "老挝", "Лаос*")),
    ("cambodia", "Cambodia", ("Cambodia", "Cambodian", "Phnom Penh", "캄보디아", "柬埔寨", "Камбодж*")),
    ("nicaragua", "Nicaragua", ("Nicaragua", "Nicaraguan", "Managua", "니카라과", "尼加拉瓜", "Никарагу*")),
)

STOPWORDS = frozenset("""
a an the and or but of to in on at by for with from as is are was were be been being it its this that these those
he she they we you i his her their our your them him us not no nor so than then there here which who whom whose
what when where why how all any both each few more most other some such only own same too very can will just
should now also after before during over under again further once about against between into through above below
up down out off said says say told according would could may might must has have had do does did new one two three
year years month months week weeks day days time since while amid including said’s mr ms its' who's
""".split())
