"""Built-in skeleton conventions: joint order, bones, centre, left/right pairs.

Each entry of `BUILTIN_SPECS` is the plain-data description of one skeleton
convention; `msclr.skeletons.get(name)` turns it into a validated `Convention`
(see `convention.make_convention`). Fields:

* ``joints``: joint names (lower_snake_case, unique), in the order of the data.
* ``bones``: ``(child, parent)`` name pairs. They form one tree over all joints
  (exactly V-1 bones, connected). The bone stream does not read the direction
  from here: it uses the breadth-first tree rooted at ``centre``
  (`Convention.parents`).
* ``centre``: the root joint for the ST-GCN spatial partition.
* ``flip_pairs``: every left/right pair. Joints that are not listed map to
  themselves.
* ``unit``: coordinate unit of the data source (``m``, ``mm`` or ``px``).
* ``source``: where the joint order and the bones come from.

Where the original edge list is not a tree over all joints, the comments say
which edges were changed and why. The names are our own; ``source`` gives the
original name scheme.
"""

from __future__ import annotations

BUILTIN_SPECS: dict[str, dict] = {
    # ------------------------------------------------------------------ NTU RGB+D
    "ntu25": dict(
        description="Kinect v2 (NTU RGB+D), 25 joints",
        source=(
            "Joint order: NTU RGB+D (Shahroudy et al., CVPR 2016) = Kinect v2 JointType order "
            "(SpineBase ... ThumbRight). Bones and centre: ST-GCN (Yan et al., AAAI 2018), "
            "net/utils/graph.py, layout 'ntu-rgb+d' (24 edges, center = 21 - 1), kept exactly "
            "as written there (first = child). MS-CLR uses the same graph."
        ),
        unit="m",
        joints=[
            "spine_base",  # 0
            "spine_mid",  # 1
            "neck",  # 2
            "head",  # 3
            "shoulder_left",  # 4
            "elbow_left",  # 5
            "wrist_left",  # 6
            "hand_left",  # 7
            "shoulder_right",  # 8
            "elbow_right",  # 9
            "wrist_right",  # 10
            "hand_right",  # 11
            "hip_left",  # 12
            "knee_left",  # 13
            "ankle_left",  # 14
            "foot_left",  # 15
            "hip_right",  # 16
            "knee_right",  # 17
            "ankle_right",  # 18
            "foot_right",  # 19
            "spine_shoulder",  # 20
            "hand_tip_left",  # 21
            "thumb_left",  # 22
            "hand_tip_right",  # 23
            "thumb_right",  # 24
        ],
        # ST-GCN 'ntu-rgb+d' neighbor_1base, in its order:
        # (1,2) (2,21) (3,21) (4,3) (5,21) (6,5) (7,6) (8,7) (9,21) (10,9) (11,10) (12,11)
        # (13,1) (14,13) (15,14) (16,15) (17,1) (18,17) (19,18) (20,19) (22,23) (23,8)
        # (24,25) (25,12).
        # As in ST-GCN, the hand tip hangs off the thumb and the thumb off the hand.
        bones=[
            ("spine_base", "spine_mid"),
            ("spine_mid", "spine_shoulder"),
            ("neck", "spine_shoulder"),
            ("head", "neck"),
            ("shoulder_left", "spine_shoulder"),
            ("elbow_left", "shoulder_left"),
            ("wrist_left", "elbow_left"),
            ("hand_left", "wrist_left"),
            ("shoulder_right", "spine_shoulder"),
            ("elbow_right", "shoulder_right"),
            ("wrist_right", "elbow_right"),
            ("hand_right", "wrist_right"),
            ("hip_left", "spine_base"),
            ("knee_left", "hip_left"),
            ("ankle_left", "knee_left"),
            ("foot_left", "ankle_left"),
            ("hip_right", "spine_base"),
            ("knee_right", "hip_right"),
            ("ankle_right", "knee_right"),
            ("foot_right", "ankle_right"),
            ("hand_tip_left", "thumb_left"),
            ("thumb_left", "hand_left"),
            ("hand_tip_right", "thumb_right"),
            ("thumb_right", "hand_right"),
        ],
        centre="spine_shoulder",  # ST-GCN: center = 21 - 1 (NTU joint 21, "spine")
        flip_pairs=[
            ("shoulder_left", "shoulder_right"),
            ("elbow_left", "elbow_right"),
            ("wrist_left", "wrist_right"),
            ("hand_left", "hand_right"),
            ("hip_left", "hip_right"),
            ("knee_left", "knee_right"),
            ("ankle_left", "ankle_right"),
            ("foot_left", "foot_right"),
            ("hand_tip_left", "hand_tip_right"),
            ("thumb_left", "thumb_right"),
        ],
    ),
    # ------------------------------------------------------------------ Kinect v1
    "kinect_v1_20": dict(
        description="Kinect v1, 20 joints in UTD-MHAD's order",
        source=(
            "Joint order: the rows of UTD-MHAD's d_skel (Chen, Jafari, Kehtarnavaz, ICIP 2015) as the "
            "dataset's Skeleton_joint_order.txt lists them: head, shoulder_center, spine, hip_center, "
            "left arm, right arm, left leg, right leg. Checked on the UTD-MHAD files by "
            "tests/test_data_utd_derive.py::test_real_utd_mhad (in the first frame the head is the "
            "highest joint, a foot or ankle the lowest, and the left shoulder has a smaller camera x "
            "than the right one). No other dataset's order was checked: verify it before storing "
            "another Kinect v1 dataset under this name. Bones: head-shoulder_center-spine-hip_center, "
            "shoulder_center to the shoulders, hip_center to the hips, then the limb chains; they "
            "point towards the centre, as ST-GCN's do for NTU."
        ),
        unit="m",  # Kinect v1 SDK camera space is in metres
        joints=[
            "head",  # 0
            "shoulder_center",  # 1
            "spine",  # 2
            "hip_center",  # 3
            "left_shoulder",  # 4
            "left_elbow",  # 5
            "left_wrist",  # 6
            "left_hand",  # 7
            "right_shoulder",  # 8
            "right_elbow",  # 9
            "right_wrist",  # 10
            "right_hand",  # 11
            "left_hip",  # 12
            "left_knee",  # 13
            "left_ankle",  # 14
            "left_foot",  # 15
            "right_hip",  # 16
            "right_knee",  # 17
            "right_ankle",  # 18
            "right_foot",  # 19
        ],
        bones=[
            ("head", "shoulder_center"),
            ("spine", "shoulder_center"),
            ("hip_center", "spine"),
            ("left_shoulder", "shoulder_center"),
            ("left_elbow", "left_shoulder"),
            ("left_wrist", "left_elbow"),
            ("left_hand", "left_wrist"),
            ("right_shoulder", "shoulder_center"),
            ("right_elbow", "right_shoulder"),
            ("right_wrist", "right_elbow"),
            ("right_hand", "right_wrist"),
            ("left_hip", "hip_center"),
            ("left_knee", "left_hip"),
            ("left_ankle", "left_knee"),
            ("left_foot", "left_ankle"),
            ("right_hip", "hip_center"),
            ("right_knee", "right_hip"),
            ("right_ankle", "right_knee"),
            ("right_foot", "right_ankle"),
        ],
        # Centre: shoulder_center, the Kinect v1 joint at the place of ST-GCN's NTU centre
        # (Kinect v2 SpineShoulder, NTU joint 21), so the spatial partitions of kinect_v1_20 and
        # ntu25 split the same body parts into "closer" and "further".
        centre="shoulder_center",
        flip_pairs=[
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hand", "right_hand"),
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_foot", "right_foot"),
        ],
    ),
    # ------------------------------------------------------------------ SMPL
    "smpl24": dict(
        description="SMPL body model joints (MeTRAbs 'smpl_24'), 24 joints",
        source=(
            "Joint order and bones: SMPL (Loper et al., SIGGRAPH Asia 2015). Bones are the "
            "SMPL kinematic tree, parents = [-1,0,0,0,1,2,3,4,5,6,7,8,9,9,9,12,13,14,16,17,"
            "18,19,20,21]. MeTRAbs 'smpl_24' uses this order with 4-letter names (pelv, lhip, "
            "rhip, bell, lkne, rkne, spin, lank, rank, thor, ltoe, rtoe, neck, lcla, rcla, "
            "head, lsho, rsho, lelb, relb, lwri, rwri, lhan, rhan). MS-CLR's graph.py "
            "'smpl_24' layout has the same 23 edges, with the spine chain oriented towards "
            "spine3, and center = 10 - 1 (spine3)."
        ),
        unit="mm",  # MS-CLR gets these poses from MeTRAbs, which outputs millimetres
        joints=[
            "pelvis",  # 0
            "left_hip",  # 1
            "right_hip",  # 2
            "spine1",  # 3
            "left_knee",  # 4
            "right_knee",  # 5
            "spine2",  # 6
            "left_ankle",  # 7
            "right_ankle",  # 8
            "spine3",  # 9
            "left_foot",  # 10
            "right_foot",  # 11
            "neck",  # 12
            "left_collar",  # 13
            "right_collar",  # 14
            "head",  # 15
            "left_shoulder",  # 16
            "right_shoulder",  # 17
            "left_elbow",  # 18
            "right_elbow",  # 19
            "left_wrist",  # 20
            "right_wrist",  # 21
            "left_hand",  # 22
            "right_hand",  # 23
        ],
        bones=[
            ("left_hip", "pelvis"),
            ("right_hip", "pelvis"),
            ("spine1", "pelvis"),
            ("left_knee", "left_hip"),
            ("right_knee", "right_hip"),
            ("spine2", "spine1"),
            ("left_ankle", "left_knee"),
            ("right_ankle", "right_knee"),
            ("spine3", "spine2"),
            ("left_foot", "left_ankle"),
            ("right_foot", "right_ankle"),
            ("neck", "spine3"),
            ("left_collar", "spine3"),
            ("right_collar", "spine3"),
            ("head", "neck"),
            ("left_shoulder", "left_collar"),
            ("right_shoulder", "right_collar"),
            ("left_elbow", "left_shoulder"),
            ("right_elbow", "right_shoulder"),
            ("left_wrist", "left_elbow"),
            ("right_wrist", "right_elbow"),
            ("left_hand", "left_wrist"),
            ("right_hand", "right_wrist"),
        ],
        # Centre: spine3 (chest). It is the joint the neck and both collars attach to, so it
        # plays the role of NTU's spine_shoulder. MS-CLR chooses the same ("Center is Spine 3
        # which connects to the clavicules").
        centre="spine3",
        flip_pairs=[
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_foot", "right_foot"),
            ("left_collar", "right_collar"),
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hand", "right_hand"),
        ],
    ),
    # ------------------------------------------------------------------ SMPL-X (MeTRAbs)
    "smplx42": dict(
        description="SMPL-X body joints + face/foot/hand keypoints (MeTRAbs 'smplx_42'), 42 joints",
        source=(
            "Joint order: MeTRAbs skeleton 'smplx_42' (the 'smplx' joints of the MeTRAbs "
            "models). These are the SMPL-X joints selected in posepile "
            "ds/rich/main.py:make_rich_body, i_sel = [0..24, 28, 43, 55..66, 68, 71, 73] of "
            "the smplx-library joint list. Original (posepile/MeTRAbs) names: pelv,lhip,rhip,"
            "bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,"
            "relb,lwri,rwri,jaw,leyehf,reyehf,lmiddle1,rmiddle1,nose,reye,leye,rear,lear,lto2,"
            "lto3,lhee,rto2,rto3,rhee,lthu,lmiddle,rthu,rmiddle (the same list appears in "
            "isarandi/posepile issue #4). Our names follow the smplx library's joint_names.py. "
            "Bones: the posepile/MeTRAbs edges (rich make_joint_info, mirrored by JointInfo), "
            "plus MS-CLR graph.py 'smplx_42' finger edges, plus the two eyeball joints attached "
            "to head (see the comment above the bones)."
        ),
        unit="mm",  # MeTRAbs output
        joints=[
            "pelvis",  # 0  pelv
            "left_hip",  # 1  lhip
            "right_hip",  # 2  rhip
            "spine1",  # 3  bell
            "left_knee",  # 4  lkne
            "right_knee",  # 5  rkne
            "spine2",  # 6  spin
            "left_ankle",  # 7  lank
            "right_ankle",  # 8  rank
            "spine3",  # 9  thor
            "left_foot",  # 10 ltoe (SMPL-X joint left_foot)
            "right_foot",  # 11 rtoe
            "neck",  # 12 neck
            "left_collar",  # 13 lcla
            "right_collar",  # 14 rcla
            "head",  # 15 head
            "left_shoulder",  # 16 lsho
            "right_shoulder",  # 17 rsho
            "left_elbow",  # 18 lelb
            "right_elbow",  # 19 relb
            "left_wrist",  # 20 lwri
            "right_wrist",  # 21 rwri
            "jaw",  # 22 jaw
            "left_eye_smplhf",  # 23 leyehf (eyeball joint of the kinematic tree)
            "right_eye_smplhf",  # 24 reyehf
            "left_middle1",  # 25 lmiddle1 (middle-finger base joint)
            "right_middle1",  # 26 rmiddle1
            "nose",  # 27 nose (mesh keypoint)
            "right_eye",  # 28 reye
            "left_eye",  # 29 leye
            "right_ear",  # 30 rear
            "left_ear",  # 31 lear
            "left_big_toe",  # 32 lto2
            "left_small_toe",  # 33 lto3
            "left_heel",  # 34 lhee
            "right_big_toe",  # 35 rto2
            "right_small_toe",  # 36 rto3
            "right_heel",  # 37 rhee
            "left_thumb_tip",  # 38 lthu (smplx 'left_thumb')
            "left_middle_tip",  # 39 lmiddle (smplx 'left_middle')
            "right_thumb_tip",  # 40 rthu (smplx 'right_thumb')
            "right_middle_tip",  # 41 rmiddle (smplx 'right_middle')
        ],
        # MeTRAbs/posepile edges (33): the arms wri-elb-sho-cla-thor, ank-hee, to2-toe-to3,
        # and ear-eye-nose-head-jaw-neck-thor-spin-bell-pelv-hip-kne-ank-toe. The head chain
        # runs through the jaw, not head->neck as in the SMPL-X kinematic tree. These edges
        # do not reach 8 joints. MS-CLR adds 6 finger edges (middle1, thumb tip and middle tip
        # each attached to the wrist); we keep them. MS-CLR still leaves the eyeball joints
        # (left/right_eye_smplhf) unconnected, so we attach them to head, their parent in the
        # SMPL-X kinematic tree. This gives 41 = V-1 bones. The bones point away from the
        # pelvis, like smpl24.
        bones=[
            ("left_hip", "pelvis"),
            ("right_hip", "pelvis"),
            ("spine1", "pelvis"),
            ("left_knee", "left_hip"),
            ("right_knee", "right_hip"),
            ("spine2", "spine1"),
            ("left_ankle", "left_knee"),
            ("right_ankle", "right_knee"),
            ("spine3", "spine2"),
            ("left_foot", "left_ankle"),
            ("right_foot", "right_ankle"),
            ("neck", "spine3"),
            ("left_collar", "spine3"),
            ("right_collar", "spine3"),
            ("jaw", "neck"),
            ("head", "jaw"),
            ("left_shoulder", "left_collar"),
            ("right_shoulder", "right_collar"),
            ("left_elbow", "left_shoulder"),
            ("right_elbow", "right_shoulder"),
            ("left_wrist", "left_elbow"),
            ("right_wrist", "right_elbow"),
            ("left_eye_smplhf", "head"),  # added (SMPL-X parent); not in MeTRAbs/MS-CLR
            ("right_eye_smplhf", "head"),  # added (SMPL-X parent); not in MeTRAbs/MS-CLR
            ("left_middle1", "left_wrist"),  # MS-CLR
            ("right_middle1", "right_wrist"),  # MS-CLR
            ("nose", "head"),
            ("right_eye", "nose"),
            ("left_eye", "nose"),
            ("right_ear", "right_eye"),
            ("left_ear", "left_eye"),
            ("left_big_toe", "left_foot"),
            ("left_small_toe", "left_foot"),
            ("left_heel", "left_ankle"),
            ("right_big_toe", "right_foot"),
            ("right_small_toe", "right_foot"),
            ("right_heel", "right_ankle"),
            ("left_thumb_tip", "left_wrist"),  # MS-CLR
            ("left_middle_tip", "left_wrist"),  # MS-CLR
            ("right_thumb_tip", "right_wrist"),  # MS-CLR
            ("right_middle_tip", "right_wrist"),  # MS-CLR
        ],
        # Centre: spine3 (MeTRAbs 'thor'), as in smpl24. MS-CLR uses the same centre
        # (center = 10 - 1, "Thorax connects to the clavicules").
        centre="spine3",
        flip_pairs=[
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_foot", "right_foot"),
            ("left_collar", "right_collar"),
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_eye_smplhf", "right_eye_smplhf"),
            ("left_middle1", "right_middle1"),
            ("left_eye", "right_eye"),
            ("left_ear", "right_ear"),
            ("left_big_toe", "right_big_toe"),
            ("left_small_toe", "right_small_toe"),
            ("left_heel", "right_heel"),
            ("left_thumb_tip", "right_thumb_tip"),
            ("left_middle_tip", "right_middle_tip"),
        ],
    ),
    # ------------------------------------------------------------------ Berkeley MHAD (MeTRAbs)
    "berkeley_mhad43": dict(
        description="Berkeley MHAD mocap markers (MeTRAbs 'berkeley_mhad_43'), 43 joints",
        source=(
            "Joint order: MeTRAbs skeleton 'berkeley_mhad_43' = the 43 optical-mocap markers "
            "of Berkeley MHAD as defined in posepile ds/bmhad/main.py (MeTRAbs suffix "
            "'_bmhad'). Original names: head,lhead,rhead,rback,backl,backt,lback,lside,bell,"
            "chest,rside,lsho1,lsho2,larm,lelb,lwri,lhan1,lhan2,lhan3,rsho1,rsho2,rarm,relb,"
            "rwri,rhan1,rhan2,rhan3,lhipb,lhipf,lhipl,lleg,lkne,lank,lhee,lfoo,rhipb,rhipf,"
            "rhipl,rleg,rkne,rank,rhee,rfoo. The same 43 names are checked against "
            "model.per_skeleton_joint_names['berkeley_mhad_43'] in levineuwirth/neuropose. "
            "Bones: a tree derived from the posepile/MS-CLR marker edges (see the comment "
            "above the bones)."
        ),
        unit="mm",  # MeTRAbs output
        joints=[
            "head",  # 0  head
            "left_head",  # 1  lhead
            "right_head",  # 2  rhead
            "right_back",  # 3  rback
            "backl",  # 4  backl (midline back marker; placement not documented, name kept)
            "backt",  # 5  backt (midline back marker; placement not documented, name kept)
            "left_back",  # 6  lback
            "left_side",  # 7  lside
            "belly",  # 8  bell
            "chest",  # 9  chest
            "right_side",  # 10 rside
            "left_shoulder_1",  # 11 lsho1
            "left_shoulder_2",  # 12 lsho2
            "left_arm",  # 13 larm (upper-arm marker)
            "left_elbow",  # 14 lelb
            "left_wrist",  # 15 lwri
            "left_hand_1",  # 16 lhan1
            "left_hand_2",  # 17 lhan2
            "left_hand_3",  # 18 lhan3
            "right_shoulder_1",  # 19 rsho1
            "right_shoulder_2",  # 20 rsho2
            "right_arm",  # 21 rarm
            "right_elbow",  # 22 relb
            "right_wrist",  # 23 rwri
            "right_hand_1",  # 24 rhan1
            "right_hand_2",  # 25 rhan2
            "right_hand_3",  # 26 rhan3
            "left_hip_back",  # 27 lhipb
            "left_hip_front",  # 28 lhipf
            "left_hip_lateral",  # 29 lhipl
            "left_leg",  # 30 lleg (thigh marker)
            "left_knee",  # 31 lkne
            "left_ankle",  # 32 lank
            "left_heel",  # 33 lhee
            "left_foot",  # 34 lfoo
            "right_hip_back",  # 35 rhipb
            "right_hip_front",  # 36 rhipf
            "right_hip_lateral",  # 37 rhipl
            "right_leg",  # 38 rleg
            "right_knee",  # 39 rkne
            "right_ankle",  # 40 rank
            "right_heel",  # 41 rhee
            "right_foot",  # 42 rfoo
        ],
        # The posepile edge string, mirrored by JointInfo, is what MS-CLR's graph.py
        # 'berkeley_mhad_43' layout lists (42 edges). MS-CLR also keeps bell-chest and
        # backl-r/lback, which posepile loses to a missing comma ('bell-chest' 'backl-...'
        # are fused into one path), so posepile itself ends up with 39 edges. Even with
        # those 42 edges there is no tree:
        #   * head, lhead and rhead form a component of their own;
        #   * the shoulder/arm/hand markers (joined by lsho1-rsho1) form another;
        #   * the torso has cycles: rback-backl-lback-lhipb-rhipb and the pelvis ring
        #     lhipb-lhipl-lhipf-lside-bell-rside-rhipf-rhipl-rhipb.
        # Our tree changes as little as possible and stays left/right symmetric:
        #   removed  lhipb-rhipb, lback-lhipb, rback-rhipb (breaks both cycles; each hip-back
        #            marker stays on its own hip ring via hip_lateral), and lsho1-rsho1;
        #   added    backl->belly (joins the midline back markers to the midline front
        #            markers), head->chest, lsho1->chest, rsho1->chest. The chest is the hub
        #            of the upper torso, like spine_shoulder in ST-GCN's NTU graph.
        # All other edges are the MeTRAbs/MS-CLR ones. The bones point towards the centre.
        bones=[
            ("left_head", "head"),
            ("right_head", "head"),
            ("head", "chest"),  # added
            ("chest", "belly"),
            ("left_side", "belly"),
            ("right_side", "belly"),
            ("backl", "belly"),  # added
            ("backt", "backl"),
            ("left_back", "backl"),
            ("right_back", "backl"),
            ("left_shoulder_1", "chest"),  # added
            ("left_shoulder_2", "left_shoulder_1"),
            ("left_arm", "left_shoulder_2"),
            ("left_elbow", "left_arm"),
            ("left_wrist", "left_elbow"),
            ("left_hand_1", "left_wrist"),
            ("left_hand_2", "left_wrist"),
            ("left_hand_3", "left_wrist"),
            ("right_shoulder_1", "chest"),  # added
            ("right_shoulder_2", "right_shoulder_1"),
            ("right_arm", "right_shoulder_2"),
            ("right_elbow", "right_arm"),
            ("right_wrist", "right_elbow"),
            ("right_hand_1", "right_wrist"),
            ("right_hand_2", "right_wrist"),
            ("right_hand_3", "right_wrist"),
            ("left_hip_front", "left_side"),
            ("left_hip_lateral", "left_hip_front"),
            ("left_hip_back", "left_hip_lateral"),
            ("left_leg", "left_hip_front"),
            ("left_knee", "left_leg"),
            ("left_ankle", "left_knee"),
            ("left_heel", "left_ankle"),
            ("left_foot", "left_heel"),
            ("right_hip_front", "right_side"),
            ("right_hip_lateral", "right_hip_front"),
            ("right_hip_back", "right_hip_lateral"),
            ("right_leg", "right_hip_front"),
            ("right_knee", "right_leg"),
            ("right_ankle", "right_knee"),
            ("right_heel", "right_ankle"),
            ("right_foot", "right_heel"),
        ],
        # Centre: belly ('bell'), as in MS-CLR (center = 9 - 1, "Center is Belly"). In the
        # tree above it is the midline hub that joins the chest, both sides and the back.
        centre="belly",
        flip_pairs=[
            ("left_head", "right_head"),
            ("left_back", "right_back"),
            ("left_side", "right_side"),
            ("left_shoulder_1", "right_shoulder_1"),
            ("left_shoulder_2", "right_shoulder_2"),
            ("left_arm", "right_arm"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hand_1", "right_hand_1"),
            ("left_hand_2", "right_hand_2"),
            ("left_hand_3", "right_hand_3"),
            ("left_hip_back", "right_hip_back"),
            ("left_hip_front", "right_hip_front"),
            ("left_hip_lateral", "right_hip_lateral"),
            ("left_leg", "right_leg"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_heel", "right_heel"),
            ("left_foot", "right_foot"),
        ],
    ),
    # ------------------------------------------------------------------ COCO
    "coco17": dict(
        description="COCO keypoints, 17 joints",
        source=(
            "Joint order: MS-COCO person keypoints (nose, left_eye, right_eye, left_ear, "
            "right_ear, left_shoulder, right_shoulder, left_elbow, right_elbow, left_wrist, "
            "right_wrist, left_hip, right_hip, left_knee, right_knee, left_ankle, right_ankle). "
            "Bones and centre: the 'coco' layout of PYSKL / MMAction2 (graph.py, inward = "
            "(15,13) (13,11) (16,14) (14,12) (11,5) (12,6) (9,7) (7,5) (10,8) (8,6) (5,0) "
            "(6,0) (1,0) (3,1) (2,0) (4,2), center = 0). COCO's own 19-link skeleton is "
            "not a tree."
        ),
        unit="m",  # COCO itself is 2D pixels; 'm' means 3D-lifted COCO-ordered keypoints
        joints=[
            "nose",  # 0
            "left_eye",  # 1
            "right_eye",  # 2
            "left_ear",  # 3
            "right_ear",  # 4
            "left_shoulder",  # 5
            "right_shoulder",  # 6
            "left_elbow",  # 7
            "right_elbow",  # 8
            "left_wrist",  # 9
            "right_wrist",  # 10
            "left_hip",  # 11
            "right_hip",  # 12
            "left_knee",  # 13
            "right_knee",  # 14
            "left_ankle",  # 15
            "right_ankle",  # 16
        ],
        # COCO has no neck joint. As in the OpenPose graph, each hip hangs off the shoulder
        # on its side, and the two shoulders hang off the nose, which stands in for the neck.
        # Eyes attach to the nose and ears to the eyes. There is no shoulder-shoulder or
        # hip-hip link, which would close a cycle. 16 = V-1 bones.
        bones=[
            ("left_ankle", "left_knee"),
            ("left_knee", "left_hip"),
            ("right_ankle", "right_knee"),
            ("right_knee", "right_hip"),
            ("left_hip", "left_shoulder"),
            ("right_hip", "right_shoulder"),
            ("left_wrist", "left_elbow"),
            ("left_elbow", "left_shoulder"),
            ("right_wrist", "right_elbow"),
            ("right_elbow", "right_shoulder"),
            ("left_shoulder", "nose"),
            ("right_shoulder", "nose"),
            ("left_eye", "nose"),
            ("left_ear", "left_eye"),
            ("right_eye", "nose"),
            ("right_ear", "right_eye"),
        ],
        # Centre: nose. It is the only midline joint and, in this tree, the hub that joins
        # the head and both shoulders, i.e. the neck's role in ST-GCN's OpenPose graph.
        # Centring on a shoulder would make the hop distances left/right asymmetric.
        # PYSKL/MMAction2 also use center = 0.
        centre="nose",
        flip_pairs=[
            ("left_eye", "right_eye"),
            ("left_ear", "right_ear"),
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
        ],
    ),
    # ------------------------------------------------------------------ Human3.6M
    "h36m17": dict(
        description="Human3.6M 17 joints (common 3D-pose order)",
        source=(
            "Joint order: the 17-joint Human3.6M subset used by most 3D human-pose works "
            "(e.g. VideoPose3D; MeTRAbs 'h36m_17': pelv,rhip,rkne,rank,lhip,lkne,lank,spin,"
            "neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri, the same joints under other names: "
            "thorax = 'neck', neck_nose = 'head', head = 'htop'). Bones: the standard tree, "
            "parents = [-1,0,1,2,0,4,5,0,7,8,9,8,11,12,8,14,15]."
        ),
        unit="mm",
        joints=[
            "pelvis",  # 0
            "right_hip",  # 1
            "right_knee",  # 2
            "right_ankle",  # 3
            "left_hip",  # 4
            "left_knee",  # 5
            "left_ankle",  # 6
            "spine",  # 7
            "thorax",  # 8
            "neck_nose",  # 9
            "head",  # 10
            "left_shoulder",  # 11
            "left_elbow",  # 12
            "left_wrist",  # 13
            "right_shoulder",  # 14
            "right_elbow",  # 15
            "right_wrist",  # 16
        ],
        bones=[
            ("right_hip", "pelvis"),
            ("right_knee", "right_hip"),
            ("right_ankle", "right_knee"),
            ("left_hip", "pelvis"),
            ("left_knee", "left_hip"),
            ("left_ankle", "left_knee"),
            ("spine", "pelvis"),
            ("thorax", "spine"),
            ("neck_nose", "thorax"),
            ("head", "neck_nose"),
            ("left_shoulder", "thorax"),
            ("left_elbow", "left_shoulder"),
            ("left_wrist", "left_elbow"),
            ("right_shoulder", "thorax"),
            ("right_elbow", "right_shoulder"),
            ("right_wrist", "right_elbow"),
        ],
        # Centre: thorax. It is the joint the neck and both shoulders attach to, matching
        # the chest-level centres of ntu25 (spine_shoulder), smpl24/smplx42 (spine3) and
        # openpose18 (neck).
        centre="thorax",
        flip_pairs=[
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
        ],
    ),
    # ------------------------------------------------------------------ OpenPose COCO-18
    "openpose18": dict(
        description="OpenPose COCO-18 keypoints (ST-GCN Kinetics), 18 joints",
        source=(
            "Joint order: OpenPose COCO-18 output (nose, neck, right arm, left arm, right leg, "
            "left leg, right_eye, left_eye, right_ear, left_ear). Bones and centre: ST-GCN "
            "(Yan et al., AAAI 2018) net/utils/graph.py, layout 'openpose' (17 edges, 0-based, "
            "first = child, kept as written; center = 1)."
        ),
        # 'px': OpenPose gives 2D image coordinates in pixels. ST-GCN's Kinetics-skeleton
        # data stores them normalised to the frame, with the confidence as a third channel.
        # They are not metric.
        unit="px",
        joints=[
            "nose",  # 0
            "neck",  # 1
            "right_shoulder",  # 2
            "right_elbow",  # 3
            "right_wrist",  # 4
            "left_shoulder",  # 5
            "left_elbow",  # 6
            "left_wrist",  # 7
            "right_hip",  # 8
            "right_knee",  # 9
            "right_ankle",  # 10
            "left_hip",  # 11
            "left_knee",  # 12
            "left_ankle",  # 13
            "right_eye",  # 14
            "left_eye",  # 15
            "right_ear",  # 16
            "left_ear",  # 17
        ],
        # ST-GCN 'openpose' neighbor_link, in its order:
        # (4,3) (3,2) (7,6) (6,5) (13,12) (12,11) (10,9) (9,8) (11,5) (8,2) (5,1) (2,1)
        # (0,1) (15,0) (14,0) (17,15) (16,14). The hips hang off the shoulders.
        bones=[
            ("right_wrist", "right_elbow"),
            ("right_elbow", "right_shoulder"),
            ("left_wrist", "left_elbow"),
            ("left_elbow", "left_shoulder"),
            ("left_ankle", "left_knee"),
            ("left_knee", "left_hip"),
            ("right_ankle", "right_knee"),
            ("right_knee", "right_hip"),
            ("left_hip", "left_shoulder"),
            ("right_hip", "right_shoulder"),
            ("left_shoulder", "neck"),
            ("right_shoulder", "neck"),
            ("nose", "neck"),
            ("left_eye", "nose"),
            ("right_eye", "nose"),
            ("left_ear", "left_eye"),
            ("right_ear", "right_eye"),
        ],
        centre="neck",  # ST-GCN: center = 1
        flip_pairs=[
            ("left_shoulder", "right_shoulder"),
            ("left_elbow", "right_elbow"),
            ("left_wrist", "right_wrist"),
            ("left_hip", "right_hip"),
            ("left_knee", "right_knee"),
            ("left_ankle", "right_ankle"),
            ("left_eye", "right_eye"),
            ("left_ear", "right_ear"),
        ],
    ),
}
